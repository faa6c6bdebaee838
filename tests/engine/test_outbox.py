"""The executor's side of the transactional outbox (runtime/engine/outbox.py), on a memory store
with mocked operations: a `call` of an `effect: publish` operation is not made but kept with its
step, written in the same `write_journal` as the step's record, and sent by `drain`; without an
outbox (FlowTests) the call goes to the connector (its mock) as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runtime.engine.outbox import OutboxRetry, drain
from runtime.engine.plan import Plan
from runtime.spec.flowtest import Mock
from runtime.steps.call import default_idempotency_key
from runtime.store.base import OutboxMessage, StoreError
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]

BUS = """
kind: Connection
name: bus
type: amqp
config: {url: "amqp://127.0.0.1:5672/"}
operations:
  publish: {routing_key: "shipments.{{ params.kind }}", body: "{{ params.body }}"}
---
kind: Flow
name: ship
trigger: {manual: {}}
steps:
  - id: announce
    call: bus.publish
    with: {kind: created, body: {shipment: "{{ input.id }}", weight: "{{ input.weight }}"}}
  - id: note
    call: erp.notify
    with: {shipment: "{{ input.id }}"}
"""
MOCKS = {"bus.publish": {"output": {"confirmed": True}}, "erp.notify": {"output": {"ok": True}}}


class Recording:
    """The harness's store, remembering each `write_journal` (step keys, outbox step keys)."""

    def __init__(self, h: Harness, *, fail_first_outbox_write: bool = False) -> None:
        self.inner = h.store
        self.writes: list[tuple[list[str], list[str]]] = []
        self.fail = fail_first_outbox_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write_journal(
        self, run_id: str, entries: Any, changes: Any = None, *, outbox: tuple[OutboxMessage, ...] = ()
    ) -> None:
        if outbox and self.fail:
            self.fail = False
            raise StoreError("injected: the journal write with the message failed")
        await self.inner.write_journal(run_id, entries, changes, outbox=outbox)
        self.writes.append(([record.step_key for record, _ in entries], [m.step_key for m in outbox]))


def queued(make_plan: Build, *, fail_first_outbox_write: bool = False) -> tuple[Harness, Recording]:
    h = Harness(make_plan(BUS), MOCKS)
    recording = Recording(h, fail_first_outbox_write=fail_first_outbox_write)
    h.executor.store = recording  # type: ignore[assignment]
    h.executor.outbox = True
    return h, recording


async def test_a_publish_call_is_committed_with_its_step_and_sent_after(make_plan: Build) -> None:
    h, recording = queued(make_plan)
    wakes: list[int] = []
    h.executor.on_outbox = lambda: wakes.append(1)
    await h.store.open()
    result = await h.executor.run_flow("ship", {"id": "S-9", "weight": "12.50"})
    assert result.status == "succeeded"
    key = default_idempotency_key("ship", result.run.id, "announce")
    journal = {r.step_key: r for r in await h.store.journal(result.run.id)}
    assert journal["announce"].output == {"queued": True, "message_id": key, "operation": "bus.publish"}
    assert h.mocks.counts == {"erp.notify": 1}  # the broker was not called during the run
    # the message went in the write of its own step (before the next effect), and nowhere else
    assert ["announce"] in [outbox for _steps, outbox in recording.writes]
    assert any("announce" in steps and outbox == ["announce"] for steps, outbox in recording.writes)
    assert wakes == [1]
    [message] = await h.store.list_outbox(run_id=result.run.id)
    assert (message.status, message.message_id, message.operation) == ("pending", key, "bus.publish")
    assert message.request["spec"]["routing_key"] == "shipments.created"
    assert message.request["spec"]["body"] == {"shipment": "S-9", "weight": "12.50"}
    assert message.request["headers"]["X-Syncline-Run"] == result.run.id
    assert [c.status for c in result.calls] == ["queued", "ok"]

    report = await drain(h.executor, owner="test")
    assert report.sent == 1 and report.failed == []
    assert h.mocks.counts == {"erp.notify": 1, "bus.publish": 1}
    [sent] = await h.store.list_outbox(run_id=result.run.id)
    assert (sent.status, sent.result, sent.attempts) == ("sent", {"confirmed": True}, 1)
    assert (await drain(h.executor, owner="test")).sent == 0  # once


async def test_a_message_lost_with_its_journal_write_is_made_again_once(make_plan: Build) -> None:
    h, _recording = queued(make_plan, fail_first_outbox_write=True)
    await h.store.open()
    created = await h.executor.submit("ship", {"id": "S-1", "weight": 1})
    with pytest.raises(StoreError):
        await h.executor.execute(created.run)
    assert await h.store.list_outbox() == [] and await h.store.journal(created.run.id) == []
    run = await h.store.get_run(created.run.id)
    assert run is not None
    result = await h.executor.execute(run)  # resumed: the step runs again, its message is made again
    assert result.status == "succeeded"
    [message] = await h.store.list_outbox()
    assert message.message_id == default_idempotency_key("ship", run.id, "announce")
    assert [r.step_key for r in await h.store.journal(run.id)] == ["announce", "note"]


async def test_a_failed_send_keeps_the_message_for_its_next_attempt(make_plan: Build) -> None:
    h, _recording = queued(make_plan)
    h.mocks.mocks["bus.publish"] = Mock.model_validate({"error": {"message": "broker gone", "reason": "connect"}})
    await h.store.open()
    result = await h.executor.run_flow("ship", {"id": "S-2", "weight": 1})
    assert result.status == "succeeded"  # the run is done; its message is the outbox's to send
    report = await drain(h.executor, owner="test", retry=OutboxRetry(first=10, cap=10, attempts=2))
    [failed] = report.failed
    assert report.sent == 0 and "broker gone" in (failed.error or "")
    assert failed.retry_at is not None and 5 <= failed.retry_at - h.clock.time() <= 10
    [message] = await h.store.list_outbox()
    assert (message.status, message.attempts, message.next_attempt_at) == ("pending", 1, failed.retry_at)
    assert (await drain(h.executor, owner="test")).failed == []  # not due yet
    h.clock.advance(10)
    last = await drain(h.executor, owner="test", retry=OutboxRetry(first=10, cap=10, attempts=2))
    assert [f.retry_at for f in last.failed] == [None]  # the last attempt: given up
    [gone] = await h.store.list_outbox()
    assert (gone.status, gone.attempts) == ("failed", 2)


async def test_without_an_outbox_the_call_goes_to_the_connector_inline(make_plan: Build) -> None:
    h = Harness(make_plan(BUS), MOCKS)  # as FlowTests run: mocks see the publish call itself
    await h.store.open()
    result = await h.executor.run_flow("ship", {"id": "S-3", "weight": 1})
    journal = {r.step_key: r for r in await h.store.journal(result.run.id)}
    assert journal["announce"].output == {"confirmed": True}
    assert h.mocks.counts == {"bus.publish": 1, "erp.notify": 1}
    assert await h.store.list_outbox() == []


async def test_a_dry_run_lists_the_publish_and_queues_nothing(make_plan: Build) -> None:
    h = Harness(make_plan(BUS), MOCKS, dry_run=True)
    h.executor.outbox = True
    await h.store.open()
    result = await h.executor.run_flow("ship", {"id": "S-4", "weight": 1})
    assert [c.status for c in result.calls] == ["planned", "planned"]
    assert await h.store.list_outbox() == []
