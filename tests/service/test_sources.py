"""How a node runs sources (runtime/service/sources.py): the context's accept (keys, created flags,
runs on the current plan), dead letters from a source, backpressure against `service.max_backlog`,
and a failing source started again after a backoff with its error logged redacted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from runtime.clock import FakeClock
from runtime.service.sources import NodeSourceContext, SourceHost
from runtime.source_api import SourceContext, SourceEvent, TriggerType
from runtime.store.base import RunFilter
from runtime.triggers.manual import ManualSpec
from tests.service.conftest import StartNode
from tests.service.harness import Sink, until, write_project

FLOW = """
trigger:
  manual: {}
business_keys:
  order: "{{ input.id }}"
steps:
  - id: push
    call: sink.post
    with: {path: got, body: "{{ input }}"}
"""


def _kind(source: Any) -> TriggerType:
    return TriggerType(key="manual", model=ManualSpec, description="test", source=source)


async def test_accept_commits_runs_once_per_key_and_says_which_are_new(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": FLOW}), triggers=False)
    ctx = NodeSourceContext(node.service, "orders", _kind(None), ManualSpec())
    first = await ctx.accept([SourceEvent({"id": "A"}, key="m-1"), SourceEvent({"id": "B"}, key="m-2")], cursor=7)
    assert [(a.created, a.run_id is not None) for a in first] == [(True, True), (True, True)]
    again = await ctx.accept([SourceEvent({"id": "A"}, key="m-1"), SourceEvent({"id": "C"}, key="m-3")])
    assert [a.created for a in again] == [False, True]
    assert await ctx.cursor() == 7  # NO_CURSOR keeps the stored cursor
    runs = await node.service.store.list_runs(RunFilter(flow="orders", limit=10))
    assert sorted(r.input["id"] for r in runs) == ["A", "B", "C"]
    assert {r.trigger for r in runs} == {"manual"}
    assert sorted(r.meta["source"]["key"] for r in runs) == ["m-1", "m-2", "m-3"]
    assert sorted(r.business_keys["order"] for r in runs) == ["A", "B", "C"]
    await until(lambda: len(sink.on("/got")) == 3)


async def test_an_event_that_cannot_run_is_dead_lettered_once(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"orders": FLOW}), triggers=False)
    ctx = NodeSourceContext(node.service, "orders", _kind(None), ManualSpec())
    event = SourceEvent("not json {", key="m-9", meta={"message_id": "m-9"})
    await ctx.dead_letter(event, "unparseable", "the body is not JSON: Expecting value at line 1")
    await ctx.dead_letter(event, "unparseable", "the body is not JSON: Expecting value at line 1")  # redelivered
    letters = await node.service.store.list_dead_letters(flow="orders")
    assert [(d.reason, d.error["message"]) for d in letters] == [
        ("unparseable", "the body is not JSON: Expecting value at line 1")
    ]
    run = await node.service.store.get_run(letters[0].run_id)
    assert run is not None and run.status == "dead_lettered" and run.input == "not json {"
    assert sink.on("/got") == []


async def test_sources_pause_while_the_backlog_is_over_the_limit(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/got", delay=0.5)
    project = write_project(tmp_path / "p", sink.url, {"orders": FLOW}, project_extra="service: {max_backlog: 2}\n")
    node = await nodes(project, triggers=False, workers=1)
    ctx = NodeSourceContext(node.service, "orders", _kind(None), ManualSpec())
    await ctx.accept([SourceEvent({"id": str(n)}, key=f"k{n}") for n in range(5)])
    assert await ctx._check_backlog() is True
    assert ctx.paused()

    async def clear() -> bool:
        ctx._backlog_read_at = None  # read the backlog again now
        return not await ctx._check_backlog()

    await until(clear, timeout=20)  # the single worker drains the queue
    assert not ctx.paused()
    await ctx.ready()  # returns at once now


class _Flaky:
    """Fails twice with a secret in its message, then accepts one event and stays."""

    failures = 0

    def __init__(self, spec: ManualSpec) -> None:
        self.spec = spec

    async def run(self, ctx: SourceContext) -> None:
        if _Flaky.failures < 2:
            _Flaky.failures += 1
            raise ConnectionError("broker refused password hunter2-canary")
        await ctx.accept([SourceEvent({"id": "after-restart"}, key="only")])
        ctx.progressed()


async def test_a_failing_source_is_started_again_and_its_error_is_redacted(
    tmp_path: Path, sink: Sink, nodes: StartNode, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_PW", "hunter2-canary")
    project = write_project(tmp_path / "p", sink.url, {"orders": FLOW})
    (project / "systems" / "broker.yaml").write_text(
        "kind: Connection\nname: broker\ntype: http\nconfig:\n  base_url: http://127.0.0.1:9\n"
        "  auth: {type: bearer, token: \"{{ secret('BROKER_PW') }}\"}\n"
    )
    clock = FakeClock()
    node = await nodes(project, triggers=False, clock=clock)
    node.service.secrets.resolve("BROKER_PW")  # the node knows the secret's value, as after any use
    host = SourceHost(node.service, node.service.plan.flows["orders"], _kind(_Flaky))
    caplog.set_level(logging.WARNING, logger="syncline.sources")
    host.start()
    try:
        await until(lambda: node.service.store.list_runs(RunFilter(flow="orders", limit=5)))
    finally:
        await host.stop()
    assert clock.slept[:2] == [1.0, 2.0]  # the restart backoff doubles
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 2 and all("***" in text for text in failures), failures
    assert "hunter2-canary" not in caplog.text
    assert host.context.last_progress is not None
