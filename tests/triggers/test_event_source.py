"""The `event` trigger kind's source (runtime/triggers/event.py) on the source API: the conformance kit,
its `match`, where a flow with no cursor begins, and that its cursor moves past events not for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from runtime.testing.source_kit import KitContext, KitEventLog, check_source, wait_for
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.event import EventSource, EventSpec


class EmitOrigin:
    """Flows emitting `order.submitted` (and, between them, an event no one listens to)."""

    def __init__(self, log: KitEventLog) -> None:
        self.log = log

    async def put(self, count: int) -> list[str]:
        keys = []
        for n in range(count):
            self.log.emit("order.shipped", {"n": n})
            keys.append(str(self.log.emit("order.submitted", {"n": n}, source_run_id=f"run-{n}").id))
        return keys


async def test_the_event_source_keeps_the_source_contract() -> None:
    log = KitEventLog()
    kind = default_trigger_registry().get("event")
    assert kind.source is EventSource
    ctx = await check_source(kind, EventSpec(name="order.submitted"), EmitOrigin(log), event_log=log)
    submitted = [str(e.id) for e in log.events if e.name == "order.submitted"]
    assert sorted(ctx.accepted, key=int) == submitted and len(submitted) == 7
    assert ctx.stored_cursor == log.events[-1].id
    assert ctx.progress > 0


@asynccontextmanager
async def running(spec: EventSpec, ctx: KitContext) -> AsyncIterator[None]:
    task = asyncio.create_task(EventSource(spec).run(ctx))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_match_filters_and_the_cursor_moves_past_events_not_for_the_flow() -> None:
    ctx = KitContext()
    spec = EventSpec(name="order.submitted", match="'BIG' in event.ref")  # written without braces
    async with running(spec, ctx):
        await wait_for(lambda: ctx.stored_cursor == 0, "the start position was stored")
        ctx.event_log.emit("order.submitted", {"ref": "small-1"}, source_run_id="r1")
        ctx.event_log.emit("order.cancelled", {"ref": "BIG-0"}, source_run_id="r2")
        await wait_for(lambda: ctx.stored_cursor == 2, "the cursor moved past two events none of which matched")
        assert ctx.accepted == {}
        big = ctx.event_log.emit("order.submitted", {"ref": "BIG-2"}, source_run_id="r3")
        await wait_for(lambda: str(big.id) in ctx.accepted, "the matching event was accepted")
    event = ctx.accepted[str(big.id)]
    assert (event.payload, event.caused_by, event.meta) == (
        {"ref": "BIG-2"},
        "r3",
        {"event": "order.submitted", "event_id": 3},
    )
    assert list(ctx.accepted) == ["3"] and ctx.stored_cursor == 3


async def test_a_flow_without_a_cursor_begins_at_its_start_position_and_keeps_its_own_after() -> None:
    ctx = KitContext()
    for n in range(3):  # history from before the flow was deployed
        ctx.event_log.emit("order.submitted", {"n": n})
    ctx.log_start = 3
    spec = EventSpec(name="order.submitted")
    async with running(spec, ctx):
        await wait_for(lambda: ctx.stored_cursor == 3, "the start position was stored at once")
        ctx.event_log.emit("order.submitted", {"n": 3})
        await wait_for(lambda: "4" in ctx.accepted, "the event after the start was accepted")
    assert list(ctx.accepted) == ["4"]

    ctx.log_start = 99  # a later start position does not matter to a flow with a cursor
    ctx.event_log.emit("order.submitted", {"n": 4})  # emitted while the source was stopped
    async with running(spec, ctx):
        await wait_for(lambda: "5" in ctx.accepted, "the event emitted while stopped was accepted")
    assert list(ctx.accepted) == ["4", "5"]
