"""Calls against a real local server: request building, outputs, statuses, network failures, size limit."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from urllib.parse import unquote

import pytest

from runtime.connector_api import ConnectorError
from tests.connectors.http.http_target import (
    Reply,
    call_once,
    free_port,
    json_reply,
    make_connector,
    run,
)


def test_get_returns_json_with_exact_decimals(serve):
    server = serve(
        lambda seen: Reply(200, b'{"total": 0.30, "qty": 3, "tags": ["a"]}', {"Content-Type": "application/json"})
    )
    result = run(call_once(make_connector(server.url)))
    assert result.status == 200
    assert result.output == {"total": Decimal("0.30"), "qty": 3, "tags": ["a"]}
    assert isinstance(result.output["total"], Decimal)
    assert result.meta["url"] == f"{server.url}/"


def test_text_and_empty_outputs(serve):
    replies = {"/text": Reply(200, "plain words", {"Content-Type": "text/plain"}), "/none": Reply(204)}
    server = serve(lambda seen: replies[seen.path])
    ops = {"text": {"path": "/text"}, "none": {"method": "DELETE", "path": "/none"}}
    assert run(call_once(make_connector(server.url, operations=ops), "text")).output == "plain words"
    result = run(call_once(make_connector(server.url, operations=ops), "none"))
    assert (result.output, result.status) == (None, 204)


def test_decimal_body_is_sent_as_exact_json_numbers(serve):
    server = serve(lambda seen: json_reply({"echo": seen.body.decode()}, 201))
    ops = {"create": {"method": "POST", "path": "/orders", "body": "{{ params.body }}"}}
    body = {
        "total": Decimal("0.30"),
        "lines": [{"price": Decimal("19.990"), "qty": 2}],
        "big": Decimal("12345678901234567890.01"),
    }
    result = run(call_once(make_connector(server.url, operations=ops), "create", {"body": body}))
    raw = server.requests[0].body
    assert b'"total":0.30' in raw and b'"price":19.990' in raw and b"12345678901234567890.01" in raw
    assert server.requests[0].headers["content-type"] == "application/json"
    assert result.status == 201


def test_path_query_and_headers_are_merged(serve):
    server = serve()
    ops = {
        "find": {
            "path": "/customers/{{ params.id }}",
            "query": {"tax_id": "X", "page": 2},
            "headers": {"X-Op": "1"},
        }
    }
    connector = make_connector(
        server.url + "/api/v2", operations=ops, query={"company": "100", "page": 1}, headers={"X-Conn": "yes"}
    )
    run(
        call_once(
            connector,
            "find",
            {"path": "/customers/42?expand=lines", "query": {"tax_id": "DE 1", "page": 2, "none": None}},
        )
    )
    seen = server.requests[0]
    assert seen.path == "/api/v2/customers/42"
    assert seen.query == {"company": ["100"], "page": ["2"], "tax_id": ["DE 1"], "expand": ["lines"]}
    assert seen.headers["x-op"] == "1" and seen.headers["x-conn"] == "yes"
    assert "application/json" in seen.headers["accept"]


@pytest.mark.parametrize("path", ["/../admin", "/orders/%2e%2e/admin", "/a/./b"])
def test_dot_segments_in_a_rendered_path_are_refused(serve, path):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url + "/api"), "get", {"path": path}))
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert server.connections == 0


@pytest.mark.parametrize(
    "value",
    [
        "..%2Fx",  # the observed one: sent as /a/..%2Fx
        "%2e%2e%2fadmin",
        "%2E%2E",
        "%2e%2E%2F..%2f",  # mixed case
        ".%2e",
        "..\\admin",
        "..%5cadmin",
        "..%5Cadmin",
        "%252e%252e",  # double-encoded
        "%252e%252e%252fadmin",
        "%25252e%25252e",  # triple-encoded
        "x%2f..%2fadmin",
        "..;x",  # Tomcat reads `..;x` as `..`
        "\uff0e\uff0e",  # fullwidth dots, NFKC-folded to `..` by some servers
    ],
)
def test_encoded_dot_segments_in_a_path_parameter_are_refused(serve, value):
    """The operation's path is `/a/{{ params.id }}`; the parameter carries the dot segment."""
    server = serve()
    ops = {"get": {"path": "/a/{{ params.id }}"}}
    with pytest.raises(ConnectorError, match=r"'\.' or '\.\.' segments") as caught:
        run(call_once(make_connector(server.url + "/api", operations=ops), "get", {"path": f"/a/{value}"}))
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert server.connections == 0


@pytest.mark.parametrize("value", ["v1.2", "...", "a..b", "file.", ".hidden", "a%2Fb", "%2E%2Ebak"])
def test_dots_that_are_not_dot_segments_are_sent(serve, value):
    server = serve()
    ops = {"get": {"path": "/a/{{ params.id }}"}}
    run(call_once(make_connector(server.url + "/api", operations=ops), "get", {"path": f"/a/{value}"}))
    assert unquote(server.requests[0].path) == unquote(f"/api/a/{value}")


def test_idempotency_key_on_writes_only(serve):
    server = serve()
    ops = {"create": {"method": "POST", "path": "/o", "body": {"a": 1}}, "read": {"path": "/o"}}
    connector = make_connector(server.url, operations=ops)

    async def both():
        from runtime.connector_api import CallRequest

        await connector.call(CallRequest("create", {}, idempotency_key="run-1:step-2"))
        await connector.call(CallRequest("read", {}, idempotency_key="run-1:step-3"))
        await connector.aclose()

    run(both())
    post, get = server.requests
    assert post.headers["idempotency-key"] == "run-1:step-2"
    assert "idempotency-key" not in get.headers


def test_idempotency_header_name_configurable_and_disabled(serve):
    server = serve()
    ops = {"create": {"method": "PUT", "path": "/o", "body": {"a": 1}}}
    run(
        call_once(
            make_connector(server.url, operations=ops, idempotency_header="X-Request-Key"),
            "create",
            idempotency_key="k1",
        )
    )
    run(
        call_once(
            make_connector(server.url, operations=ops, idempotency_header=None),
            "create",
            idempotency_key="k2",
        )
    )
    assert server.requests[0].headers["x-request-key"] == "k1"
    assert "idempotency-key" not in server.requests[1].headers and "x-request-key" not in server.requests[1].headers


def test_correlation_headers_are_passed(serve):
    server = serve()
    run(call_once(make_connector(server.url), headers={"X-Correlation-Id": "c-123", "X-Syncline-Flow": "orders"}))
    assert server.requests[0].headers["x-correlation-id"] == "c-123"
    assert server.requests[0].headers["x-syncline-flow"] == "orders"


def test_form_body(serve):
    server = serve()
    ops = {"submit": {"method": "POST", "form": {"a": "x y", "n": Decimal("1.50"), "flag": True, "many": [1, 2]}}}
    run(call_once(make_connector(server.url, operations=ops), "submit"))
    seen = server.requests[0]
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.body == b"a=x+y&n=1.50&flag=true&many=1&many=2"


@pytest.mark.parametrize(
    "where",
    [
        {"spec": {"headers": {"X-Trace": "abc\r\nX-Injected: 1"}}},
        {"spec": {"headers": {"X-Trace": "abc\nX-Injected: 1"}}},
        {"spec": {"headers": {"X-Bad\r\nName": "v"}}},
        {"request": {"headers": {"X-Correlation-Id": "id\r\nSet-Cookie: a=b"}}},
        {"request": {"idempotency_key": "key\r\nX-Injected: 1"}, "spec": {"method": "POST"}},
        {"spec": {"headers": {"X-Nul": "a\x00b"}}},
    ],
)
def test_header_injection_is_refused_before_sending(serve, where):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url), "get", where.get("spec"), **where.get("request", {})))
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert "X-Injected" not in str(caught.value) and "Set-Cookie" not in str(caught.value)
    assert server.connections == 0 and server.requests == []


def test_header_injection_through_a_credential_is_refused(serve):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth={"type": "bearer", "token": "tok\r\nX-Injected: 1"})))
    assert caught.value.reason == "config" and "tok" not in str(caught.value)
    assert server.connections == 0


def test_header_injection_in_config_is_refused_at_creation(serve):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        make_connector(server.url, headers={"X-Tenant": "a\r\nHost: evil"})
    assert caught.value.reason == "config"


def test_framing_headers_cannot_be_configured(serve):
    server = serve()
    with pytest.raises(ConnectorError):
        run(call_once(make_connector(server.url), "get", {"headers": {"Host": "internal.example"}}))
    assert server.connections == 0


def test_expect_turns_a_404_into_output(serve):
    server = serve(lambda seen: json_reply({"error": "not found"}, 404))
    result = run(call_once(make_connector(server.url, operations={"find": {"expect": [200, 404]}}), "find"))
    assert (result.status, result.output) == (404, {"error": "not found"})


def test_4xx_is_fatal_with_the_parsed_body(serve):
    server = serve(lambda seen: json_reply({"error": "invalid customer", "field": "tax_id"}, 422))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    error = caught.value
    assert (error.reason, error.error_class, error.status) == ("status", "fatal", 422)
    assert error.body == {"error": "invalid customer", "field": "tax_id"}
    assert "422" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retriable(serve, status):
    server = serve(lambda seen: Reply(status, "upstream down", {"Content-Type": "text/plain"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert (caught.value.reason, caught.value.error_class, caught.value.status) == (
        "status",
        "retriable",
        status,
    )
    assert caught.value.body == "upstream down"


def test_429_with_retry_after_seconds(serve):
    server = serve(lambda seen: json_reply({"error": "slow down"}, 429, {"Retry-After": "7"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert (caught.value.reason, caught.value.error_class, caught.value.status) == (
        "status",
        "retriable",
        429,
    )
    assert caught.value.retry_after == 7


def test_429_with_retry_after_http_date(serve):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    server = serve(lambda seen: Reply(429, "", {"Retry-After": when}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert caught.value.retry_after is not None and 80 <= caught.value.retry_after <= 90


def test_retry_after_is_capped(serve):
    far = format_datetime(datetime.now(UTC) + timedelta(hours=3), usegmt=True)
    server = serve(lambda seen: Reply(503, "", {"Retry-After": far if seen.path == "/date" else "86400"}))
    ops = {"date": {"path": "/date"}, "secs": {"path": "/secs"}}
    for op in ops:
        with pytest.raises(ConnectorError) as caught:
            run(call_once(make_connector(server.url, operations=ops, retry_after_max="2m"), op))
        assert caught.value.retry_after == 120


def test_timeout_is_retriable(serve):
    server = serve(lambda seen: Reply(200, "late", delay=3))
    started = time.monotonic()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, timeout="300ms")))
    assert (caught.value.reason, caught.value.error_class) == ("timeout", "retriable")
    assert time.monotonic() - started < 2


def test_per_call_timeout_overrides_config(serve):
    server = serve(lambda seen: Reply(200, "late", delay=3))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, timeout="30s"), timeout=0.2))
    assert caught.value.reason == "timeout"


def test_connection_refused_is_retriable():
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(f"http://127.0.0.1:{free_port()}")))
    assert (caught.value.reason, caught.value.error_class) == ("connect", "retriable")


def test_connection_reset_is_retriable(serve):
    server = serve(lambda seen: Reply(reset=True))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert (caught.value.reason, caught.value.error_class) == ("connect", "retriable")


def test_response_larger_than_the_limit_by_content_length(serve):
    server = serve(lambda seen: Reply(200, b"x" * 5000, {"Content-Type": "text/plain"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, max_response_bytes=4096)))
    assert (caught.value.reason, caught.value.error_class) == ("response", "fatal")


def test_response_larger_than_the_limit_while_streaming(serve):
    server = serve(lambda seen: Reply(200, headers={"Content-Type": "text/plain"}, chunks=[b"y" * 1000] * 10))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, max_response_bytes=4096)))
    assert caught.value.reason == "response"
    ok = serve(lambda seen: Reply(200, headers={"Content-Type": "text/plain"}, chunks=[b"y" * 1000] * 4))
    assert run(call_once(make_connector(ok.url, max_response_bytes=4096))).output == "y" * 4000


def test_response_limit_applies_after_decompression(serve):
    bomb = gzip.compress(b"0" * 200_000)
    server = serve(lambda seen: Reply(200, bomb, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, max_response_bytes=50_000)))
    assert caught.value.reason == "response" and len(bomb) < 50_000


def test_compressed_responses_are_decoded(serve):
    packed = gzip.compress(b'{"total": 0.30, "id": "SO-1"}')
    server = serve(lambda seen: Reply(200, packed, {"Content-Type": "application/json", "Content-Encoding": "gzip"}))
    result = run(call_once(make_connector(server.url)))
    assert result.output == {"total": Decimal("0.30"), "id": "SO-1"}


def test_invalid_json_declared_as_json_is_a_response_error(serve):
    server = serve(lambda seen: Reply(200, "{not json", {"Content-Type": "application/json"}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url)))
    assert (caught.value.reason, caught.value.error_class) == ("response", "fatal")


def test_dry_run_sends_nothing(serve):
    server = serve()
    result = run(
        call_once(
            make_connector(server.url, operations={"create": {"method": "POST", "body": {"a": 1}}}),
            "create",
            dry_run=True,
        )
    )
    assert result.meta["dry_run"] is True and result.meta["method"] == "POST"
    assert server.connections == 0


def test_unknown_operation_is_a_config_error(serve):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url), "nope"))
    assert caught.value.reason == "config"


def test_rendered_spec_is_validated(serve):
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url), "get", {"method": "FETCH"}))
    assert caught.value.reason == "config" and server.connections == 0


def test_connections_are_reused(serve):
    server = serve()
    connector = make_connector(server.url)

    async def three():
        from runtime.connector_api import CallRequest

        for _ in range(3):
            await connector.call(CallRequest("get", {}))
        await connector.aclose()

    run(three())
    assert len(server.requests) == 3 and server.connections == 1
