"""Each pagination style against a real server: items of every page concatenated, bounded by max_pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.http.pagination import link_rel, select_items
from runtime.connector_api import ConnectorError
from tests.connectors.http.http_target import Reply, Seen, call_once, json_reply, make_connector, run

ROWS = [{"id": i, "amount": Decimal(f"{i}.10")} for i in range(1, 8)]


def _page(seen: Seen, size: int = 3) -> tuple[int, list[dict[str, object]]]:
    page = int(seen.query.get("page", ["1"])[0])
    return page, ROWS[(page - 1) * size : page * size]


def _json(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{"id": r["id"], "amount": float(str(r["amount"]))} for r in rows]


def test_next_link_in_the_link_header(serve):
    def app(seen: Seen) -> Reply:
        page, rows = _page(seen)
        headers = {}
        if page * 3 < len(ROWS):
            headers["Link"] = f'<{server.url}/items?page={page + 1}>; rel="next", </items?page=1>; rel="first"'
        return json_reply(_json(rows), headers=headers)

    server = serve(app)
    ops = {"list": {"path": "/items", "pagination": {"type": "next_link"}}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == [1, 2, 3, 4, 5, 6, 7]
    assert result.output[0]["amount"] == Decimal("1.1")
    assert result.meta["pages"] == 3 and result.meta["truncated"] is False


def test_next_link_in_the_body(serve):
    def app(seen: Seen) -> Reply:
        page, rows = _page(seen)
        nxt = f"/items?page={page + 1}" if page * 3 < len(ROWS) else None
        return json_reply({"data": _json(rows), "links": {"next": nxt}})

    server = serve(app)
    ops = {
        "list": {
            "path": "/items",
            "pagination": {"type": "next_link", "next": "$.links.next", "items": "$.data"},
        }
    }
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.target for r in server.requests] == ["/items", "/items?page=2", "/items?page=3"]


def test_cursor(serve):
    def app(seen: Seen) -> Reply:
        start = int(seen.query.get("after", ["0"])[0])
        rows = ROWS[start : start + 3]
        nxt = str(start + 3) if start + 3 < len(ROWS) else None
        return json_reply({"results": _json(rows), "meta": {"next_cursor": nxt}})

    server = serve(app)
    pagination = {
        "type": "cursor",
        "cursor_param": "after",
        "next_cursor": "meta.next_cursor",
        "items": "results",
    }
    ops = {"list": {"path": "/items", "query": {"status": "open"}, "pagination": pagination}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.query for r in server.requests] == [
        {"status": ["open"]},
        {"status": ["open"], "after": ["3"]},
        {"status": ["open"], "after": ["6"]},
    ]


def test_page_numbers_until_an_empty_page(serve):
    def app(seen: Seen) -> Reply:
        assert seen.query["per_page"] == ["3"]
        return json_reply({"items": _json(_page(seen)[1])})

    server = serve(app)
    pagination = {
        "type": "page",
        "page_param": "page",
        "start": 1,
        "size_param": "per_page",
        "size": 3,
        "items": "$.items",
    }
    result = run(call_once(make_connector(server.url, operations={"list": {"pagination": pagination}}), "list"))
    assert [r["id"] for r in result.output] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.query["page"] for r in server.requests] == [["1"], ["2"], ["3"], ["4"]]


def test_max_pages_bounds_the_walk(serve):
    server = serve(lambda seen: json_reply([{"page": seen.query.get("page", ["1"])[0]}]))
    ops = {"list": {"pagination": {"type": "page", "max_pages": 5}}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert len(result.output) == 5 and result.meta["truncated"] is True and len(server.requests) == 5


def test_a_link_back_to_a_seen_page_stops(serve):
    server = serve(lambda seen: json_reply({"data": [1], "next": "/loop"}))
    ops = {"list": {"path": "/loop", "pagination": {"type": "next_link", "next": "next", "items": "data"}}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert result.output == [1] and len(server.requests) == 1


def test_a_failing_page_fails_the_call(serve):
    server = serve(lambda seen: json_reply({"data": [1], "next": "/p2"}) if seen.path == "/p1" else Reply(503))
    ops = {"list": {"path": "/p1", "pagination": {"type": "next_link", "next": "next", "items": "data"}}}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations=ops), "list"))
    assert caught.value.status == 503 and caught.value.retriable


def test_items_not_a_list_is_a_response_error(serve):
    server = serve(lambda seen: json_reply({"data": {"id": 1}}))
    ops = {"list": {"pagination": {"type": "page", "items": "data"}}}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations=ops), "list"))
    assert caught.value.reason == "response"


def test_link_header_parsing():
    header = '<https://a/x?page=2>; rel="next last", <https://a/x?page=1>; rel=prev'
    assert link_rel([header], "next") == "https://a/x?page=2"
    assert link_rel([header], "prev") == "https://a/x?page=1"
    assert link_rel([header], "first") is None


def test_item_paths():
    document = {"data": {"rows": [{"id": 1}, {"id": 2}]}}
    assert select_items(document, "data.rows") == [{"id": 1}, {"id": 2}]
    assert select_items(document, "$.data.rows") == [{"id": 1}, {"id": 2}]
    assert select_items(document, "$.data.rows[*].id") == [1, 2]
    assert select_items(document, "$.missing") == []
    assert select_items([1, 2], "$") == [1, 2]
