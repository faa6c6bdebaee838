"""The vendors' own paging schemes against a real server answering in their shapes (Salesforce
`nextRecordsUrl`, Stripe `has_more` + `starting_after`, Shopify `Link: rel="next"`, Chargebee
`next_offset`, Dynamics `@odata.nextLink`, SAP OData v2 `d.__next`, NetSuite SuiteQL `hasMore` +
offset, Zuora `nextPage`); form bodies with nested keys (Stripe and Chargebee styles); Shopify's
leaky-bucket header pacing the calls."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import pytest

from connectors.http.form import FormError, form_pairs
from connectors.http.ratelimit import ServerBucketGauge
from runtime.connector_api import ConnectorError
from tests.connectors.http.http_target import FakeClock, Reply, Seen, call_once, json_reply, make_connector, run

IDS = [f"obj_{i}" for i in range(1, 8)]


def _after(seen: Seen, key: str) -> int:
    value = seen.query.get(key, [None])[0]
    return IDS.index(value) + 1 if value else 0


def test_salesforce_next_records_url(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        start = int(seen.path.rsplit("-", 1)[1]) if "-" in seen.path else 0
        rows = [{"Id": i} for i in IDS[start : start + 3]]
        done = start + 3 >= len(IDS)
        body: dict[str, Any] = {"totalSize": len(IDS), "done": done, "records": rows}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v59.0/query/01gxx-{start + 3}"
        return json_reply(body)

    server = serve(app)
    page = {"type": "next_link", "next": "nextRecordsUrl", "items": "records"}
    ops = {"q": {"path": "/services/data/v59.0/query", "query": {"q": "SELECT Id FROM Account"}, "pagination": page}}
    result = run(call_once(make_connector(server.url, operations=ops), "q"))
    assert [r["Id"] for r in result.output] == IDS
    assert [r.path for r in server.requests][1:] == [
        "/services/data/v59.0/query/01gxx-3",
        "/services/data/v59.0/query/01gxx-6",
    ]


def test_stripe_has_more_and_starting_after(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        start = _after(seen, "starting_after")
        limit = int(seen.query["limit"][0])
        rows = [{"id": i, "object": "customer"} for i in IDS[start : start + limit]]
        return json_reply({"object": "list", "data": rows, "has_more": start + limit < len(IDS), "url": "/v1/c"})

    server = serve(app)
    page = {"type": "cursor", "cursor_param": "starting_after", "next_cursor": "$.data[-1].id", "more": "has_more"}
    ops = {"list": {"path": "/v1/customers", "query": {"limit": 3}, "pagination": {**page, "items": "data"}}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == IDS
    assert [r.query.get("starting_after") for r in server.requests] == [None, ["obj_3"], ["obj_6"]]
    assert all(r.query["limit"] == ["3"] for r in server.requests)


def test_shopify_link_header_page_info(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        start = int(seen.query.get("page_info", ["0"])[0])
        headers = {}
        if start + 3 < len(IDS):
            nxt = f"{server.url}/admin/api/2024-07/products.json?limit=3&page_info={start + 3}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        return json_reply({"products": [{"id": i} for i in IDS[start : start + 3]]}, headers=headers)

    server = serve(app)
    ops = {"list": {"path": "/admin/api/2024-07/products.json", "query": {"limit": 3, "status": "active"}}}
    ops["list"]["pagination"] = {"type": "next_link", "next": "header:Link", "items": "products"}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == IDS
    assert server.requests[1].query == {"limit": ["3"], "page_info": ["3"]}  # the link alone, as Shopify wants


def test_chargebee_next_offset(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        start = int(seen.query.get("offset", ['["0"]'])[0].strip('[]"'))
        body: dict[str, Any] = {"list": [{"customer": {"id": i}} for i in IDS[start : start + 3]]}
        if start + 3 < len(IDS):
            body["next_offset"] = f'["{start + 3}"]'
        return json_reply(body)

    server = serve(app)
    page = {"type": "cursor", "cursor_param": "offset", "next_cursor": "next_offset", "items": "$.list[*].customer"}
    ops = {"list": {"path": "/api/v2/customers", "pagination": page}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == IDS
    assert [r.query.get("offset") for r in server.requests] == [None, ['["3"]'], ['["6"]']]


@pytest.mark.parametrize(
    ("style", "shape"),
    [
        ("dynamics", {"next": "$['@odata.nextLink']", "items": "value"}),
        ("sap", {"next": "d.__next", "items": "d.results"}),
        ("zuora", {"next": "nextPage", "items": "invoices"}),
    ],
)
def test_body_next_links(serve: Any, style: str, shape: dict[str, str]) -> None:
    def app(seen: Seen) -> Reply:
        start = int(seen.query.get("skip", ["0"])[0])
        rows = [{"id": i} for i in IDS[start : start + 3]]
        nxt = f"{server.url}/things?skip={start + 3}" if start + 3 < len(IDS) else None
        if style == "dynamics":
            return json_reply({"value": rows, **({"@odata.nextLink": nxt} if nxt else {})})
        if style == "sap":
            return json_reply({"d": {"results": rows, **({"__next": nxt} if nxt else {})}})
        return json_reply({"invoices": rows, "nextPage": nxt, "success": True})

    server = serve(app)
    ops = {"list": {"path": "/things", "pagination": {"type": "next_link", **shape}}}
    result = run(call_once(make_connector(server.url, operations=ops), "list"))
    assert [r["id"] for r in result.output] == IDS
    assert len(server.requests) == 3


def test_netsuite_suiteql_has_more_and_offset(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        offset, limit = int(seen.query["offset"][0]), int(seen.query["limit"][0])
        rows = [{"id": i} for i in IDS[offset : offset + limit]]
        more = offset + limit < len(IDS)
        return json_reply({"items": rows, "hasMore": more, "offset": offset, "count": len(rows)})

    server = serve(app)
    page = {"type": "offset", "limit_param": "limit", "limit": 3, "more": "hasMore", "items": "items"}
    ops = {"q": {"method": "POST", "path": "/query/v1/suiteql", "body": {"q": "SELECT id FROM customer"}}}
    ops["q"]["pagination"] = page
    result = run(call_once(make_connector(server.url, operations=ops), "q"))
    assert [r["id"] for r in result.output] == IDS
    assert [(r.method, r.query["offset"], r.json()) for r in server.requests] == [
        ("POST", [str(o)], {"q": "SELECT id FROM customer"}) for o in (0, 3, 6)
    ]


def test_offset_without_a_flag_stops_at_a_short_page(serve: Any) -> None:
    def app(seen: Seen) -> Reply:
        offset = int(seen.query["offset"][0])
        return json_reply([{"id": i} for i in IDS[offset : offset + 3]])

    server = serve(app)
    ops = {"q": {"path": "/x", "pagination": {"type": "offset", "limit_param": "limit", "limit": 3}}}
    result = run(call_once(make_connector(server.url, operations=ops), "q"))
    assert [r["id"] for r in result.output] == IDS and len(server.requests) == 3


def test_stripe_style_form_with_nested_keys(serve: Any) -> None:
    server = serve(lambda seen: json_reply({"id": "cus_1"}))
    form = {
        "email": "a@example.com",
        "metadata": {"order_id": "A-1", "empty": None},
        "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2", "quantity": 1}],
        "expand": ["customer", "latest_invoice"],
        "tax_exempt": False,
    }
    ops = {"create": {"method": "POST", "path": "/v1/customers", "form": form}}
    run(call_once(make_connector(server.url, operations=ops, form_style="brackets"), "create"))
    (seen,) = server.requests
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(seen.body.decode()) == [
        ("email", "a@example.com"),
        ("metadata[order_id]", "A-1"),
        ("items[0][price]", "price_1"),
        ("items[0][quantity]", "2"),
        ("items[1][price]", "price_2"),
        ("items[1][quantity]", "1"),
        ("expand[0]", "customer"),
        ("expand[1]", "latest_invoice"),
        ("tax_exempt", "false"),
    ]


def test_chargebee_style_form_index_last() -> None:
    form = {
        "billing_address": {"first_name": "Ada", "country": "DE"},
        "subscription_items": [{"item_price_id": "basic-EUR", "quantity": 1}, {"item_price_id": "addon-EUR"}],
        "coupon_ids": ["C1"],
    }
    assert form_pairs(form, "brackets_index_last") == [
        ("billing_address[first_name]", "Ada"),
        ("billing_address[country]", "DE"),
        ("subscription_items[item_price_id][0]", "basic-EUR"),
        ("subscription_items[quantity][0]", "1"),
        ("subscription_items[item_price_id][1]", "addon-EUR"),
        ("coupon_ids[0]", "C1"),
    ]


def test_a_nested_form_in_flat_style_is_refused(serve: Any) -> None:
    with pytest.raises(FormError, match="form_style: brackets"):
        form_pairs({"metadata": {"a": 1}})
    server = serve()
    ops = {"create": {"method": "POST", "path": "/x", "form": {"metadata": {"a": "1"}}}}
    with pytest.raises(ConnectorError, match="nested value") as caught:
        run(call_once(make_connector(server.url, operations=ops), "create"))
    assert caught.value.reason == "config" and server.requests == []


def test_operation_form_style_overrides_the_connection(serve: Any) -> None:
    server = serve(lambda seen: json_reply({}))
    ops = {"c": {"method": "POST", "path": "/x", "form": {"a": [{"b": 1}]}, "form_style": "brackets_index_last"}}
    run(call_once(make_connector(server.url, operations=ops, form_style="brackets"), "c"))
    assert parse_qsl(server.requests[0].body.decode()) == [("a[b][0]", "1")]


def test_the_server_bucket_gauge() -> None:
    clock = FakeClock()
    gauge = ServerBucketGauge(leak_per_second=2, keep_free=1, clock=clock)
    assert gauge.delay() == 0  # nothing reported yet
    gauge.observe("38/40")
    assert gauge.delay() == 0  # 38 + 1 leaves one free
    gauge.reserve()
    assert gauge.delay() == pytest.approx(0.5)  # 39 + 1 would leave none: wait for one call to leak
    clock.advance(0.5)
    assert gauge.delay() == 0
    gauge.observe("40/40")
    assert gauge.delay() == pytest.approx(1.0)
    for junk in ("", "x/40", "3", "4/0"):
        gauge.observe(junk)
    assert gauge.capacity == 40 and gauge.level() == 40


def test_shopify_call_limit_header_paces_the_connector(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    used = iter(["39/40", "12/40"])
    server = serve(lambda seen: json_reply({"shop": {}}, headers={"X-Shopify-Shop-Api-Call-Limit": next(used)}))
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("connectors.http.client.asyncio.sleep", sleep)
    clock = FakeClock()
    bucket = {"header": "X-Shopify-Shop-Api-Call-Limit", "leak_per_second": 2, "keep_free": 1}
    connector = make_connector(server.url, clock=clock, server_bucket=bucket)

    async def two_calls() -> None:
        from runtime.connector_api import CallRequest

        try:
            await connector.call(CallRequest(operation="get", spec={}))
            await connector.call(CallRequest(operation="get", spec={}))
        finally:
            await connector.aclose()

    run(two_calls())
    assert slept == [pytest.approx(0.5)]  # after 39/40 the second call waited for one slot to leak
    assert len(server.requests) == 2


def test_a_full_bucket_longer_than_the_timeout_is_retriable(serve: Any) -> None:
    server = serve(lambda seen: json_reply({}, headers={"X-Shopify-Shop-Api-Call-Limit": "40/40"}))
    clock = FakeClock()
    connector = make_connector(server.url, clock=clock, timeout="100ms", server_bucket={"leak_per_second": 2})

    async def two_calls() -> None:
        from runtime.connector_api import CallRequest

        try:
            await connector.call(CallRequest(operation="get", spec={}))
            await connector.call(CallRequest(operation="get", spec={}))
        finally:
            await connector.aclose()

    with pytest.raises(ConnectorError) as caught:
        run(two_calls())
    assert caught.value.reason == "rate_limited" and caught.value.retriable
    assert caught.value.retry_after == pytest.approx(1.0)
    assert len(server.requests) == 1
