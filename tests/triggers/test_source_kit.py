"""The source conformance kit (runtime/testing/source_kit.py) on the built-in poll source, and on two
broken sources it must catch: one that acknowledges before the commit and one that ignores the pause."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import Field

from runtime.source_api import SourceContext, SourceEvent, TriggerType
from runtime.spec.common import Model
from runtime.testing.source_kit import check_source
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.poll import PollSpec


class FeedOrigin:
    """An API answering polls with every item it holds (keys are the item ids)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.calls = 0

    async def put(self, count: int) -> list[str]:
        start = len(self.items)
        self.items += [{"id": f"inv-{n}", "total": n} for n in range(start, start + count)]
        return [f"inv-{n}" for n in range(start, start + count)]

    def answer(self, operation: str, params: Any) -> Any:
        assert operation == "billing.list_invoices"
        self.calls += 1
        return {"data": list(self.items)}


async def test_the_poll_source_keeps_the_source_contract() -> None:
    spec = PollSpec.model_validate(
        {"call": "billing.list_invoices", "every": "1s", "items": "$.data[*]", "key": "{{ item.id }}"}
    )
    origin = FeedOrigin()
    ctx = await check_source(default_trigger_registry().get("poll"), spec, origin, calls=origin.answer)
    assert sorted(ctx.accepted) == [f"inv-{n}" for n in range(7)]
    assert ctx.progress > 0 and origin.calls > 3


class QueueOrigin:
    """An in-memory queue that redelivers what was taken but not acknowledged, when asked to."""

    def __init__(self) -> None:
        self.ready: asyncio.Queue[str] = asyncio.Queue()
        self.unacked: set[str] = set()
        self.count = 0

    async def put(self, count: int) -> list[str]:
        keys = [f"m{self.count + n}" for n in range(count)]
        self.count += count
        for key in keys:
            await self.ready.put(key)
        return keys

    def redeliver(self) -> None:
        for key in sorted(self.unacked):
            self.ready.put_nowait(key)
        self.unacked.clear()


class SloppySpec(Model):
    """A source that forgets its duties, for the kit to catch."""

    ack_first: bool = Field(False)
    ignore_pause: bool = Field(False)


def _sloppy(origin: QueueOrigin) -> TriggerType:
    class Sloppy:
        def __init__(self, spec: SloppySpec) -> None:
            self.spec = spec

        async def run(self, ctx: SourceContext) -> None:
            origin.redeliver()  # a new consumer gets what the last one never acknowledged
            while True:
                key = await origin.ready.get()
                if not self.spec.ack_first:
                    origin.unacked.add(key)
                if not self.spec.ignore_pause:
                    await ctx.ready()
                await ctx.accept([SourceEvent({"id": key}, key=key)])
                origin.unacked.discard(key)  # acknowledged after the commit

    return TriggerType(key="sloppy", model=SloppySpec, description="test", source=Sloppy)


async def test_a_correct_queue_source_passes() -> None:
    origin = QueueOrigin()
    ctx = await check_source(_sloppy(origin), SloppySpec(), origin)
    assert len(ctx.accepted) == 7


async def test_the_kit_catches_a_source_that_acknowledges_before_the_commit() -> None:
    origin = QueueOrigin()
    with pytest.raises(AssertionError, match="whose accept failed"):
        await check_source(_sloppy(origin), SloppySpec(ack_first=True), origin, timeout=3)


async def test_the_kit_catches_a_source_that_ignores_backpressure() -> None:
    origin = QueueOrigin()
    with pytest.raises(AssertionError, match=r"paused|too busy"):
        await check_source(_sloppy(origin), SloppySpec(ignore_pause=True), origin, timeout=3)


async def test_a_schedule_takes_a_fire_whose_commit_failed_when_it_starts_again() -> None:
    """The fire of 12:00 meets a store that is down; the source fails, and started again at 12:02
    (within the 5 minute misfire grace) it takes that fire first, then the next ones on the grid."""
    from datetime import UTC, datetime

    from runtime.clock import FakeClock
    from runtime.testing.source_kit import KitContext, wait_for
    from runtime.triggers.schedule import ScheduleSource, ScheduleSpec

    spec = ScheduleSpec.model_validate({"every": "1h", "misfire_grace": "5m", "input": {"kind": "nightly"}})
    clock = FakeClock("2026-12-01T11:59:00Z")
    ctx = KitContext(clock=clock, refuse_accepts=True)
    with pytest.raises(Exception, match="refuses this accept"):
        await ScheduleSource(spec).run(ctx)
    assert ctx.accepted == {}
    assert clock.now() == datetime(2026, 12, 1, 12, tzinfo=UTC)

    clock.advance(120)
    ctx.refuse_accepts = False
    task = asyncio.create_task(ScheduleSource(spec).run(ctx))
    try:
        await wait_for(lambda: len(ctx.accepted) >= 3, "three fires were accepted")
    finally:
        task.cancel()
    keys = list(ctx.accepted)[:3]
    assert keys == ["2026-12-01T12:00:00+00:00", "2026-12-01T13:00:00+00:00", "2026-12-01T14:00:00+00:00"]
    assert ctx.accepted[keys[0]].payload == {"kind": "nightly"}
    assert ctx.delays[0] == 120.0  # the caught-up fire was taken two minutes late


async def test_a_schedule_with_overlap_skip_fires_nothing_while_a_run_is_active() -> None:
    from datetime import UTC, datetime

    from runtime.clock import FakeClock
    from runtime.testing.source_kit import KitContext
    from runtime.triggers.schedule import ScheduleSource, ScheduleSpec

    source = ScheduleSource(ScheduleSpec.model_validate({"cron": "0 2 * * *", "overlap": "skip"}))
    ctx = KitContext(clock=FakeClock("2026-12-01T02:00:00Z"), active=1)
    assert await source.fire(ctx, datetime(2026, 12, 1, 2, tzinfo=UTC)) is False
    assert ctx.accepted == {} and ctx.counters == {"skipped": 1.0}
    ctx.active = 0
    assert await source.fire(ctx, datetime(2026, 12, 1, 2, tzinfo=UTC)) is True
    assert await source.fire(ctx, datetime(2026, 12, 1, 2, tzinfo=UTC)) is False  # the same fire time again
