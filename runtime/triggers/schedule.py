"""`trigger: {schedule: ...}`: fire on a cron expression or at a fixed interval.

The source sleeps on the node's clock until the next fire time (runtime/triggers/cron.py computes
them; intervals count from a fixed epoch, so every node computes the same times) and accepts one
event keyed by that fire time: with several nodes on one store, each fire time becomes one run.
A fire reached more than `misfire_grace` late (the node was too busy) is skipped and counted
(`missed`); a fire no node took (all were down, or its commit failed) is taken when a source starts
within `misfire_grace` after it (the key makes that once, whichever node starts). `overlap: skip`
fires nothing while a run of the flow is not ended yet; `overlap: queue` gives every fire the
ordering key `schedule:<flow>`, so its runs execute one after another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from runtime.source_api import SourceContext, SourceEvent, TriggerType
from runtime.spec.common import AnyValue, Duration, Model, parse_duration


class ScheduleSpec(Model):
    """Fire on a cron expression or at a fixed interval."""

    cron: str | None = Field(None, description="Five-field cron expression.", examples=["0 * * * *"])
    every: Duration | None = Field(None, description="Fixed interval instead of cron.", examples=["15m"])
    timezone: str = Field("UTC", description="IANA timezone the cron is read in.", examples=["Europe/Berlin"])
    overlap: Literal["skip", "queue", "allow"] = Field(
        "skip", description="What to do when the previous fire is still running."
    )
    misfire_grace: Duration = Field("5m", description="How late a missed fire may still run.")
    input: AnyValue = Field(None, description="Payload given to each run.")

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` or `every`")
        return self


class ScheduleTrigger(Model):
    schedule: ScheduleSpec


def _explain(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "when": f"cron {spec.cron}" if spec.cron else f"every {spec.every}",
        "timezone": spec.timezone,
        "overlap": spec.overlap,
    }


class ScheduleSource:
    """The source of one flow's schedule trigger."""

    def __init__(self, spec: ScheduleSpec) -> None:
        from runtime.triggers.cron import fire_trigger

        self.spec = spec
        self.trigger = fire_trigger(spec.cron, parse_duration(spec.every) if spec.every else None, spec.timezone)
        self.grace = parse_duration(spec.misfire_grace)

    async def run(self, ctx: SourceContext) -> None:
        from runtime.triggers.cron import latest_fire, next_fire_after

        last: datetime | None = None
        missed = latest_fire(self.trigger, ctx.clock.now(), self.grace)
        if missed is not None and (ctx.clock.now() - missed).total_seconds() <= self.grace:
            await self.fire(ctx, missed)  # no node took it (all were down, or its commit failed): take it now
            last = missed
        while True:
            now = ctx.clock.now()
            fire = next_fire_after(self.trigger, max(now, last) if last is not None else now)
            if fire is None:
                ctx.log.info("schedule of %s fires no more", ctx.flow)
                return
            await ctx.clock.sleep((fire - now).total_seconds())
            last = fire
            late = (ctx.clock.now() - fire).total_seconds()
            if late > self.grace:
                ctx.count("missed")
                ctx.log.warning("schedule of %s: the fire of %s is %.0fs late; skipped", ctx.flow, fire, late)
                continue
            await self.fire(ctx, fire)

    async def fire(self, ctx: SourceContext, fire_time: datetime) -> bool:
        """Accept the run of one fire time; False when it was skipped or accepted before."""
        spec = self.spec
        if spec.overlap == "skip" and await ctx.active_runs() > 0:
            ctx.count("skipped")
            ctx.log.info("schedule of %s: a run is still active; the fire of %s is skipped", ctx.flow, fire_time)
            return False
        event = SourceEvent(
            spec.input if spec.input is not None else {},
            key=fire_time.isoformat(),
            ordering_key=f"schedule:{ctx.flow}" if spec.overlap == "queue" else None,
            meta={"fire_time": fire_time.isoformat()},
        )
        accepted = await ctx.accept([event])
        ctx.delay(max(0.0, ctx.clock.time() - fire_time.timestamp()))
        ctx.progressed()
        return accepted[0].created


TRIGGER = TriggerType(
    key="schedule",
    model=ScheduleSpec,
    wrapper=ScheduleTrigger,
    description="A cron expression or a fixed interval.",
    source=ScheduleSource,
    explain=_explain,
    order=20,
)
