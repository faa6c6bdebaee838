"""Hostile webhook input gets a 4xx the caller can act on, never a 500 (issue 8, item 5): lone
UTF-16 surrogates in the JSON body, a `respond` header value holding CR/LF, and bodies that
trickle in (slowloris) or whose client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from runtime.expr import dumps, loads
from tests.service.conftest import StartNode
from tests.service.harness import HOOK_SECRET, Node, Sink, sign, until, write_project

ORDERS = """
trigger:
  webhook:
    path: /hooks/orders
    auth:
      type: hmac_sha256
      secret: "{{ secret('HOOK_SECRET') }}"
      timestamp_header: X-Timestamp
      tolerance: 5m
steps:
  - id: post
    call: sink.post
    with: {path: orders, body: "{{ input }}"}
"""


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode, monkeypatch: pytest.MonkeyPatch) -> Node:
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    return await nodes(write_project(tmp_path / "project", sink.url, {"orders": ORDERS}))


def reason(problem: dict[str, Any]) -> Any:
    """The stable reason of a refusal (`code` in problem details, `error` in the older bodies)."""
    return problem.get("code", problem.get("error"))


# ---------------------------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (rb'{"id": "\ud800"}', "/id"),  # a lone high surrogate
        (rb'{"id": "ok", "lines": [{"sku": "a\udc00b"}]}', "/lines/0/sku"),  # a lone low surrogate
        (rb'{"id": "\uDE00\uD83D"}', "/id"),  # a pair in the wrong order, upper-case hex
        (rb'{"id": "x", "meta": {"\ud800": 1}}', "/meta/\\ud800"),  # in a key: named by its escape
        (rb'{"a~b/c": ["\udbff"]}', "/a~0b~1c/0"),  # the pointer escapes ~ and /
    ],
)
async def test_a_lone_surrogate_after_a_valid_signature_is_400_with_its_pointer(
    node: Node, sink: Sink, body: bytes, pointer: str
) -> None:
    answer = await node.client.post("/hooks/orders", content=body, headers=sign(body))
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert reason(problem) == "invalid_string" and problem["path"] == pointer
    assert pointer in problem.get("detail", problem.get("message"))
    assert await node.runs(flow="orders") == []
    assert sink.on("/orders") == []


async def test_surrogate_pairs_and_escaped_backslashes_are_accepted(node: Node) -> None:
    body = rb'{"id": "\ud83d\ude00 and \\ud800 as text"}'
    answer = await node.client.post("/hooks/orders", content=body, headers=sign(body))
    assert answer.status_code == 202, answer.text
    run = await node.wait_run(answer.json()["run_id"])
    assert run["status"] == "succeeded" and run["input"] == {"id": "\U0001f600 and \\ud800 as text"}


def test_json_text_never_holds_a_lone_surrogate() -> None:
    """Every JSON read refuses a lone surrogate, and a value holding one is refused by `dumps`
    with its pointer (it could not be encoded as UTF-8 by a store or an HTTP body)."""
    from runtime.expr.jsonvalues import LoneSurrogateError

    with pytest.raises(LoneSurrogateError) as caught:
        loads(b'{"a": [1, "\\ud800"]}')
    assert caught.value.pointer == "/a/1"
    for value in ({"a": ["\udfff"]}, {"k\ud800": None}, ["x", {"y": "\ud800"}]):
        with pytest.raises(ValueError, match="lone surrogate"):
            dumps(value)
        with pytest.raises(ValueError, match="lone surrogate"):
            dumps(value, pretty=True)
    assert loads(dumps({"a": "\U0001f600"})) == {"a": "\U0001f600"}
    assert json.loads(dumps({"n": None, "s": "é"})) == {"n": None, "s": "é"}


def test_connectors_refuse_a_lone_surrogate_in_the_json_they_read() -> None:
    from connectors.files.formats import FormatError, _json_value
    from connectors.http.response import parse_json
    from connectors.sql.connector import _json_loads

    with pytest.raises(ValueError, match="/items/0 holds a lone surrogate"):
        parse_json(b'{"items": ["\\ud800"]}')
    with pytest.raises(FormatError, match="/0 holds a lone surrogate"):
        _json_value('["\\udc00"]')
    with pytest.raises(ValueError, match="lone surrogate"):
        _json_loads('{"\\ud800": 1}')
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\U0001f600"]


# ------------------------------------------------------------------------------ respond headers

INJECTING = """
trigger:
  webhook: {path: /hooks/inject, mode: sync, sync_timeout: 5s}
steps:
  - id: answer
    respond:
      status: 201
      body: {ok: true}
      headers: {X-Order: "{{ input.id }}"}
"""


async def test_a_respond_header_value_with_cr_lf_fails_the_step_and_answers_500_with_the_location(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """A header value rendered from data holding CR/LF would split the response (observed: an empty
    reply while the run succeeded). The step fails with a clear error; the caller gets 500 with the
    run's location."""
    node = await nodes(write_project(tmp_path / "p", sink.url, {"inject": INJECTING}))
    answer = await node.client.post("/hooks/inject", json={"id": "A-1\r\nSet-Cookie: session=evil"})
    assert answer.status_code == 500, answer.text
    assert "set-cookie" not in answer.headers
    body = answer.json()
    run_id = body["run_id"]
    assert answer.headers["location"] == f"/api/v1/runs/{run_id}" == body["location"]
    assert reason(body) == "invalid_response" and answer.headers["content-type"] == "application/problem+json"
    run = await node.wait_run(run_id)
    assert run["status"] != "succeeded"
    error = json.dumps(run["error"])
    assert "X-Order" in error and "CR" in error
    fine = await node.client.post("/hooks/inject", json={"id": "A-2"})
    assert fine.status_code == 201 and fine.headers["x-order"] == "A-2"


# ------------------------------------------------------------------------------------ slow bodies

OPEN = """
trigger:
  webhook: {path: /hooks/open}
steps:
  - id: post
    call: sink.post
    with: {path: open, body: "{{ input }}"}
"""


@pytest.fixture
async def slow_node(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    project = write_project(
        tmp_path / "slow", sink.url, {"open": OPEN}, project_extra="service:\n  body_timeout: 300ms\n"
    )
    return await nodes(project)


async def _connect(node: Node) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = node.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_trickling_body_is_cut_with_408_after_the_body_timeout(slow_node: Node) -> None:
    """Slowloris: the body announces 1,000 bytes and sends one every 50 ms. The server answers 408
    once the body timeout (300 ms here, 30 s by default) has passed, and closes the connection."""
    reader, writer = await _connect(slow_node)
    writer.write(
        b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    await writer.drain()

    async def trickle() -> None:
        for _ in range(999):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)  # the attacker's pace (the server's answer ends it)

    sender = asyncio.create_task(trickle())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 10)
        sender.cancel()
        assert status_line.startswith(b"HTTP/1.1 408"), status_line
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"connection: close" in head.lower()
        # the server closes the connection (TimeoutError if it kept it open); closing with trickled
        # bytes still unread makes that a reset rather than an end of stream
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
    assert await slow_node.runs(flow="open") == []
    # a body that arrives within the timeout is accepted on the same node
    assert (await slow_node.client.post("/hooks/open", json={"a": 1})).status_code == 202


def test_the_body_timeout_defaults_to_30_seconds(tmp_path: Path, sink: Sink) -> None:
    from runtime.service.http_intake import build_routes
    from runtime.service.service import Service, load_plan

    project = write_project(tmp_path / "default", sink.url, {"open": OPEN})
    routes = build_routes(Service(project), load_plan(project))
    assert [route.context.body_timeout for route in routes] == [30.0]


async def test_a_client_that_goes_away_mid_body_is_logged_at_debug_only(
    slow_node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(20):  # a probe that opens requests and drops them
        _reader, writer = await _connect(slow_node)
        writer.write(
            b"POST /hooks/open HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"a":'
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    await until(lambda: any("disconnected" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG))
    # every dropped request is accounted for before looking for error lines
    await until(lambda: sum("disconnected" in r.getMessage() for r in caplog.records) >= 20)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]
    assert await slow_node.runs(flow="open") == []


def test_an_expression_cannot_make_a_lone_surrogate() -> None:
    """A template's string literal is the one other way one could enter a run (it would fail every
    journal write of the run, until the run is dead-lettered as poison): refused at compile time
    (SL030); a pair of escapes is the character it encodes."""
    from runtime.expr import CompileError, ExpressionEngine

    engine = ExpressionEngine()
    for source in ('{{ "a\\ud800" }}', '{{ {"k\\udc00": 1} }}', '{{ "x" ~ "\\uDE00\\uD83D" }}'):
        with pytest.raises(CompileError, match="lone surrogate") as caught:
            engine.compile(source)
        assert caught.value.code == "SL030"
    assert engine.compile('{{ "\\ud83d\\ude00" }}').render({}) == "\U0001f600"
