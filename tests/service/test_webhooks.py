"""Webhook intake through a real socket: acknowledgement after commit, every refusal with its status,
caller authentication, idempotency (R4 included) and correlation ids."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import stripe

from runtime.demo.simulators import free_port
from tests.service.conftest import StartNode
from tests.service.harness import HOOK_SECRET, VIEWER, Node, Sink, basic, sign, write_project

ORDERS = """
trigger:
  webhook:
    path: /hooks/orders
    auth:
      type: hmac_sha256
      secret: "{{ secret('HOOK_SECRET') }}"
      previous_secret: "{{ secret('HOOK_SECRET_OLD') }}"
      timestamp_header: X-Timestamp
      tolerance: 5m
    schema: schemas/order.json
    idempotency_key: "{{ input.id }}"
    max_body: 2KB
business_keys: {order: "{{ input.id }}"}
steps:
  - id: post
    call: sink.post
    with: {path: orders, body: "{{ input }}"}
"""

KEYS = """
trigger:
  webhook: {path: /hooks/keys, idempotency_key: "{{ input.n + 1 }}"}
steps:
  - id: post
    call: sink.post
    with: {path: keys, body: "{{ input }}"}
"""

KEYED = """
trigger:
  webhook:
    path: /hooks/keyed
    auth: {type: api_key, header: X-Api-Key, secret: "{{ secret('HOOK_API_KEY') }}"}
steps:
  - id: post
    call: sink.post
    with: {path: keyed, body: "{{ input }}"}
"""

BASIC = """
trigger:
  webhook:
    path: /hooks/basic
    method: PUT
    auth: {type: basic, username: "{{ secret('HOOK_USER') }}", password: "{{ secret('HOOK_PASSWORD') }}"}
steps:
  - id: post
    call: sink.post
    with: {path: basic, body: "{{ input }}"}
"""

STRIPE = """
trigger:
  webhook:
    path: /hooks/stripe
    auth:
      type: stripe
      secret: "{{ secret('STRIPE_WHSEC') }}"
      previous_secret: "{{ secret('STRIPE_WHSEC_OLD') }}"
      tolerance: 2m
    idempotency_key: "{{ input.id }}"
steps:
  - id: post
    call: sink.post
    with: {path: stripe, body: "{{ input.data.object }}"}
"""

OPEN = """
trigger:
  webhook:
    path: /hooks/open/{tenant}
    max_body: 8KB
steps:
  - id: post
    call: sink.post
    with: {path: open, body: "{{ input }}"}
"""

API_KEY = "api-key-value-0001"
OLD_SECRET = "old-hook-secret-0001"
STRIPE_SECRET = "whsec_service_test_0001"
STRIPE_OLD = "whsec_service_test_old_0002"


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode, monkeypatch: pytest.MonkeyPatch) -> Node:
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("HOOK_SECRET_OLD", OLD_SECRET)
    monkeypatch.setenv("HOOK_API_KEY", API_KEY)
    monkeypatch.setenv("HOOK_USER", "shop")
    monkeypatch.setenv("HOOK_PASSWORD", "pass-word-0001")
    monkeypatch.setenv("STRIPE_WHSEC", STRIPE_SECRET)
    monkeypatch.setenv("STRIPE_WHSEC_OLD", STRIPE_OLD)
    flows = {"orders": ORDERS, "keyed": KEYED, "basic": BASIC, "open": OPEN, "keys": KEYS, "stripe": STRIPE}
    project = write_project(tmp_path / "project", sink.url, flows)
    return await nodes(project)


def order(order_id: str = "A-1", **extra: object) -> bytes:
    return json.dumps({"id": order_id, "customer": {"id": "C-1"}, **extra}).encode()


async def post_order(node: Node, body: bytes, **headers: str) -> httpx.Response:
    return await node.client.post("/hooks/orders", content=body, headers={**sign(body), **headers})


async def post_open(node: Node, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return await node.client.post("/hooks/open/t1", content=body, headers={"Content-Type": content_type})


# ------------------------------------------------------------------------------------ acceptance


async def test_accepted_with_run_id_and_location_of_a_committed_run(node: Node, sink: Sink) -> None:
    answer = await post_order(node, order())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    run_id = body["run_id"]
    assert answer.headers["location"] == f"/api/v1/runs/{run_id}" == body["location"]
    # the run is in the store the moment the caller hears about it
    stored = await node.service.store.get_run(run_id)
    assert stored is not None and stored.flow == "orders"
    seen = await node.client.get(answer.headers["location"], headers={"Authorization": f"Bearer {VIEWER}"})
    assert seen.status_code == 200 and seen.json()["id"] == run_id
    run = await node.wait_run(run_id)
    assert run["status"] == "succeeded" and run["business_keys"] == {"order": "A-1"}
    assert [h.body for h in sink.on("/orders")] == [{"id": "A-1", "customer": {"id": "C-1"}}]


async def test_path_parameters_match_templated_paths(node: Node) -> None:
    answer = await node.client.post("/hooks/open/acme", json={"a": 1})
    assert answer.status_code == 202
    assert (await node.wait_run(answer.json()["run_id"]))["status"] == "succeeded"


# --------------------------------------------------------------------------------------- refusals


async def test_body_over_the_limit_by_content_length_is_413(node: Node, sink: Sink) -> None:
    answer = await post_open(node, json.dumps({"pad": "x" * 9000}).encode())
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"
    assert await node.runs(flow="open") == []


async def test_chunked_body_growing_past_the_limit_is_refused_while_streaming(node: Node) -> None:
    """No Content-Length; the body never ends. The server must answer 413 once the limit is passed
    instead of waiting for the rest."""
    host, port = node.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /hooks/open/t1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b'{"pad":"' + b"x" * 300
    for _ in range(30):  # 9 KB of an 8 KB limit, and no terminating chunk
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert await node.runs(flow="open") == []


async def test_wrong_content_type_is_415(node: Node) -> None:
    answer = await post_open(node, b'{"a": 1}', "text/plain")
    assert answer.status_code == 415 and answer.json()["code"] == "unsupported_media_type"
    assert (await post_open(node, b'{"a": 1}', "application/vnd.shop+json; charset=utf-8")).status_code == 202


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"name": "caf\xe9"}', "invalid_utf8"),
        (b'{"a": 1, "a": 2}', "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": Infinity}', "invalid_json"),
        (b'{"a": -Infinity}', "invalid_json"),
        (b"[" * 200 + b"]" * 200, "too_deep"),
        (b'{"a": "' + b"[" * 200 + b'"}', None),  # brackets inside a string are not nesting
        (b'{"a": 1' + b"0" * 5000 + b"}", "invalid_json"),  # beyond Python's int digit limit
        (b'{"a": 1e999999, "b": 123456789012345678901234567890.5}', None),  # huge but valid: kept exactly
        (b'{"a": ', "invalid_json"),
    ],
)
async def test_malformed_bodies_are_400(node: Node, body: bytes, reason: str | None) -> None:
    answer = await post_open(node, body)
    if reason is None:
        assert answer.status_code == 202, answer.text
        run = await node.wait_run(answer.json()["run_id"])
        assert run["status"] == "succeeded"
        if b"1e999999" in body:
            stored = await node.service.store.get_run(run["id"])
            assert stored is not None and str(stored.input["a"]) == "1E+999999"
            assert str(stored.input["b"]) == "123456789012345678901234567890.5"
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == reason
        assert await node.runs(flow="open") == []


async def test_schema_violation_is_422_with_the_failing_json_pointer(node: Node) -> None:
    answer = await post_order(node, order(lines=[{"qty": 2}, {"qty": 0}]))
    assert answer.status_code == 422
    assert answer.json()["path"] == "/lines/1/qty"
    missing = await post_order(node, json.dumps({"id": "A-2"}).encode())
    assert missing.status_code == 422 and missing.json()["path"] == "/"
    assert await node.runs(flow="orders") == []


async def test_unknown_path_is_404_and_wrong_method_405(node: Node) -> None:
    assert (await node.client.post("/hooks/nope", json={})).status_code == 404
    assert (await node.client.get("/hooks/nope")).status_code == 404
    wrong = await node.client.put("/hooks/orders", json={})
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert "POST" in wrong.headers.get("allow", "")
    assert (await node.client.get("/hooks/orders")).status_code == 405


# --------------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Signature": None}, "missing_signature"),
        ({"X-Signature": "0" * 64}, "bad_signature"),
        ({"X-Timestamp": None}, "missing_timestamp"),
        ({"X-Timestamp": "yesterday"}, "bad_timestamp"),
    ],
)
async def test_bad_or_missing_signature_is_401(node: Node, headers: dict[str, str | None], reason: str) -> None:
    body = order()
    sent = {k: v for k, v in {**sign(body), **headers}.items() if v is not None}
    answer = await node.client.post("/hooks/orders", content=body, headers=sent)
    assert answer.status_code == 401
    assert answer.json()["code"] == reason
    assert HOOK_SECRET not in answer.text
    assert await node.runs(flow="orders") == []


@pytest.mark.parametrize("skew", [-3600, 3600])
async def test_stale_and_future_signatures_are_401(node: Node, skew: int) -> None:
    body = order()
    answer = await node.client.post(
        "/hooks/orders", content=body, headers=sign(body, timestamp=int(time.time()) + skew)
    )
    assert answer.status_code == 401 and answer.json()["code"] == "stale_timestamp"


async def test_signature_over_other_bytes_is_401(node: Node) -> None:
    """The signature covers the raw bytes: the same JSON re-serialised does not verify."""
    body = order()
    headers = sign(body)
    answer = await node.client.post("/hooks/orders", content=body.replace(b", ", b","), headers=headers)
    assert answer.status_code == 401


async def test_previous_secret_is_accepted_during_rotation(node: Node) -> None:
    body = order("ROT-1")
    assert (await node.client.post("/hooks/orders", content=body, headers=sign(body, OLD_SECRET))).status_code == 202
    other = order("ROT-2")
    answer = await node.client.post("/hooks/orders", content=other, headers=sign(other, "some-other-secret"))
    assert answer.status_code == 401


async def test_api_key_auth(node: Node) -> None:
    send = node.client.post
    assert (await send("/hooks/keyed", json={"a": 1})).json()["code"] == "missing_key"
    assert (await send("/hooks/keyed", json={"a": 1}, headers={"X-Api-Key": "nope"})).status_code == 401
    answer = await send("/hooks/keyed", json={"a": 1}, headers={"X-Api-Key": API_KEY})
    assert answer.status_code == 202
    stored = await node.service.store.get_run(answer.json()["run_id"])
    assert stored is not None and "x-api-key" not in stored.headers


async def test_basic_auth(node: Node) -> None:
    send = node.client.put
    assert (await send("/hooks/basic", json={})).status_code == 401
    wrong = await send("/hooks/basic", json={}, headers={"Authorization": basic("shop", "wrong")})
    assert wrong.status_code == 401 and wrong.json()["code"] == "bad_credentials"
    assert (await send("/hooks/basic", json={}, headers={"Authorization": "Basic %%%"})).status_code == 401
    answer = await send("/hooks/basic", json={}, headers={"Authorization": basic("shop", "pass-word-0001")})
    assert answer.status_code == 202
    stored = await node.service.store.get_run(answer.json()["run_id"])
    assert stored is not None and "authorization" not in stored.headers


async def test_signature_headers_are_not_stored_with_the_run(node: Node) -> None:
    answer = await post_order(node, order("H-1"), **{"X-Shop": "s1"})
    stored = await node.service.store.get_run(answer.json()["run_id"])
    assert stored is not None
    assert stored.headers.get("x-shop") == "s1"
    assert "x-signature" not in stored.headers and "x-timestamp" not in stored.headers


def stripe_event(event_id: str) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}
    ).encode()


def stripe_signed(body: bytes, *secrets: str, age: int = 0) -> dict[str, str]:
    """A Stripe-Signature header made by the official `stripe` package (one v1 per secret, as while rolling)."""
    stamp = int(time.time()) - age
    headers = [stripe.WebhookSignature.generate_signature_header(body.decode(), s, timestamp=stamp) for s in secrets]
    v1s = [header.split(",", 1)[1] for header in headers]
    return {"Content-Type": "application/json", "Stripe-Signature": ",".join([f"t={stamp}", *v1s])}


async def test_a_stripe_webhook_signed_by_the_stripe_package_starts_a_run(node: Node, sink: Sink) -> None:
    body = stripe_event("evt_1")
    answer = await node.client.post("/hooks/stripe", content=body, headers=stripe_signed(body, STRIPE_SECRET))
    assert answer.status_code == 202, answer.text
    run = await node.wait_run(answer.json()["run_id"])
    assert run["status"] == "succeeded"
    assert [h.body for h in sink.on("/stripe")] == [{"id": "in_1"}]
    stored = await node.service.store.get_run(answer.json()["run_id"])
    assert stored is not None and "stripe-signature" not in stored.headers


async def test_stripe_rotation_several_v1_and_the_previous_secret_are_honoured(node: Node) -> None:
    rolling = stripe_event("evt_roll")
    headers = stripe_signed(rolling, "whsec_not_ours", STRIPE_SECRET)
    assert (await node.client.post("/hooks/stripe", content=rolling, headers=headers)).status_code == 202
    old = stripe_event("evt_old")
    headers = stripe_signed(old, STRIPE_OLD)
    assert (await node.client.post("/hooks/stripe", content=old, headers=headers)).status_code == 202
    foreign = stripe_event("evt_foreign")
    answer = await node.client.post("/hooks/stripe", content=foreign, headers=stripe_signed(foreign, "whsec_x"))
    assert answer.status_code == 401 and answer.json()["code"] == "bad_signature"


async def test_stripe_tampered_and_stale_deliveries_are_401(node: Node) -> None:
    body = stripe_event("evt_bad")
    tampered = await node.client.post(
        "/hooks/stripe", content=body.replace(b"in_1", b"in_2"), headers=stripe_signed(body, STRIPE_SECRET)
    )
    assert tampered.status_code == 401 and tampered.json()["code"] == "bad_signature"
    # the flow's tolerance is 2m: ten minutes old is refused, however valid the signature
    stale = await node.client.post("/hooks/stripe", content=body, headers=stripe_signed(body, STRIPE_SECRET, age=600))
    assert stale.status_code == 401 and stale.json()["code"] == "stale_timestamp"
    assert STRIPE_SECRET not in tampered.text + stale.text
    assert await node.runs(flow="stripe") == []


# ------------------------------------------------------------------------------------ idempotency


async def test_repeat_returns_the_original_run_and_status(node: Node, sink: Sink) -> None:
    body = order("I-1")
    first = await post_order(node, body)
    assert first.status_code == 202
    run = await node.wait_run(first.json()["run_id"])
    again = await post_order(node, body)
    assert again.status_code == 200
    assert again.json() == {"run_id": run["id"], "status": "succeeded", "location": f"/api/v1/runs/{run['id']}"}
    assert again.headers["location"] == first.headers["location"]
    assert len(sink.on("/orders")) == 1


async def test_same_key_with_a_different_body_is_409(node: Node) -> None:
    first = await post_order(node, order("I-2"))
    conflict = await post_order(node, order("I-2", note="changed"))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"
    assert conflict.json()["run_id"] == first.json()["run_id"]
    assert len(await node.runs(flow="orders")) == 1


async def test_r4_concurrent_duplicates_give_one_run(node: Node, sink: Sink) -> None:
    body = order("R4-1")
    answers = await asyncio.gather(*(post_order(node, body) for _ in range(20)))
    assert all(a.status_code in (200, 202) for a in answers), [a.text for a in answers]
    assert sorted(a.status_code for a in answers).count(202) == 1
    assert len({a.json()["run_id"] for a in answers}) == 1
    assert len(await node.runs(flow="orders")) == 1
    await node.wait_run(answers[0].json()["run_id"])  # the one run has made its call; no other run exists
    assert len(sink.on("/orders")) == 1


# ------------------------------------------------------------------------------------ correlation


async def test_correlation_id_from_header_reaches_the_target(node: Node, sink: Sink) -> None:
    answer = await post_order(node, order("K-1"), **{"X-Correlation-ID": "corr-4711"})
    run = await node.wait_run(answer.json()["run_id"])
    assert run["correlation_id"] == "corr-4711"
    assert sink.on("/orders")[-1].headers["x-correlation-id"] == "corr-4711"


async def test_correlation_id_from_traceparent(node: Node, sink: Sink) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    answer = await post_order(node, order("K-2"), traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    run = await node.wait_run(answer.json()["run_id"])
    assert run["correlation_id"] == trace
    assert sink.on("/orders")[-1].headers["x-correlation-id"] == trace


async def test_correlation_id_is_generated_when_none_is_sent(node: Node, sink: Sink) -> None:
    answer = await post_order(node, order("K-3"))
    run = await node.wait_run(answer.json()["run_id"])
    assert len(run["correlation_id"]) >= 16
    assert sink.on("/orders")[-1].headers["x-correlation-id"] == run["correlation_id"]
    found = await node.runs(correlation_id=run["correlation_id"])
    assert [r["id"] for r in found] == [run["id"]]


@pytest.mark.parametrize(
    "header",
    [
        (b"X-Correlation-ID", b"has obs-text \xfc bytes"),
        (b"X-Correlation-ID", b"x" * 500),
        (b"X-Correlation-ID", b"with spaces"),
        (b"traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        (b"traceparent", b"garbage"),
    ],
)
async def test_unusable_correlation_ids_are_replaced(node: Node, sink: Sink, header: tuple[bytes, bytes]) -> None:
    """A caller's id is sent on to every target and logged: one that is not short printable text is
    replaced by a generated one, and never makes the delivery fail."""
    answer = await node.client.post("/hooks/open/t1", json={"n": 1}, headers=[header])
    run = await node.wait_run(answer.json()["run_id"])
    assert run["status"] == "succeeded", run["error"]
    assert len(run["correlation_id"]) == 32 and run["correlation_id"] != "0" * 32
    assert sink.on("/open")[-1].headers["x-correlation-id"] == run["correlation_id"]


async def test_a_control_character_in_a_header_is_refused_by_the_http_layer(node: Node) -> None:
    """RFC 9110 5.5: a field value with a control character is malformed; the HTTP parser answers 400
    and no run is created (obs-text bytes, allowed there, are only replaced; see above)."""
    answer = await node.client.post("/hooks/open/t1", json={"n": 1}, headers=[(b"X-Correlation-ID", b"a\x01b")])
    assert answer.status_code == 400
    assert await node.runs(flow="open") == []


async def test_keys_that_cannot_be_computed_are_422(node: Node) -> None:
    answer = await node.client.post("/hooks/keys", json={"n": "not a number"})
    assert answer.status_code == 422 and answer.json()["code"] == "key_error"
    assert await node.runs(flow="keys") == []
    assert (await node.client.post("/hooks/keys", json={"n": 1})).status_code == 202


async def test_a_dead_node_refuses_connections() -> None:
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.post(f"http://127.0.0.1:{free_port()}/hooks/orders", json={})
