"""`trigger: {event: ...}`: run when another flow emits an event with this name.

`EventSource` reads Syncline's own event log through `SourceContext.emitted`, like any plugin
source reads its origin. Its cursor is the id of the last event it read. Each event with the
trigger's `name` whose `match` holds (rendered with `event` and `input`, both the event's data)
becomes one run, keyed by the event id, so an event starts the flow once even when several nodes
read the log or a node reads it again after a restart; the run's parent is the run that emitted it.
The cursor moves with every batch read, in the same commit as the batch's runs, also when none of
its events was for this flow. A flow with no cursor yet begins where the node stood when the source
was set up (`emitted_start()`), and stores that position at once, so an event emitted while the
source is stopped or being reloaded is still read afterwards, and a newly deployed flow does not
replay the log's history.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.source_api import EmittedEvent, Renderable, SourceContext, SourceEvent, TriggerType
from runtime.spec.common import Expression, Model

BATCH = 100  # events read per look
WAIT = 2.0  # seconds a look waits for an event (an emit on this node wakes it at once)


class EventSpec(Model):
    """Run when another flow emits an event with this name."""

    name: str = Field(description="Event name as emitted.", examples=["order.submitted"])
    match: Expression | None = Field(None, description="Only events for which this is true.")


class EventTrigger(Model):
    event: EventSpec


def _explain(spec: EventSpec) -> dict[str, Any]:
    return {"event": spec.name, "match": spec.match}


def _braced(expression: str) -> str:
    """`match` as a template: an expression written without its braces gets them."""
    stripped = expression.strip()
    return stripped if stripped.startswith("{{") and stripped.endswith("}}") else f"{{{{ {stripped} }}}}"


class EventSource:
    """The source of one flow's event trigger."""

    def __init__(self, spec: EventSpec) -> None:
        self.spec = spec

    async def run(self, ctx: SourceContext) -> None:
        match = ctx.compile(_braced(self.spec.match), "event.match") if self.spec.match else None
        cursor = await ctx.cursor()
        if cursor is None:  # first start of this flow: where the node stood, kept at once
            cursor = ctx.emitted_start()
            await ctx.ready()
            await ctx.accept([], cursor=cursor)
        after = int(cursor)
        while True:
            await ctx.ready()  # while the node's backlog is over its limit, read nothing more
            events = await ctx.emitted(after, limit=BATCH, wait=WAIT)
            ctx.progressed()
            if not events:
                continue
            chosen = [self._event(e) for e in events if e.name == self.spec.name and self._matches(ctx, match, e)]
            await ctx.ready()
            accepted = await ctx.accept(chosen, cursor=events[-1].id)
            after = events[-1].id
            created = sum(1 for a in accepted if a.created)
            if created:
                ctx.log.info("event %s started %d runs of %s", self.spec.name, created, ctx.flow)

    def _matches(self, ctx: SourceContext, match: Renderable | None, event: EmittedEvent) -> bool:
        if match is None:
            return True
        return bool(match.render({**ctx.scope(), "event": event.data, "input": event.data}))

    @staticmethod
    def _event(event: EmittedEvent) -> SourceEvent:
        return SourceEvent(
            event.data,
            key=str(event.id),
            caused_by=event.source_run_id,
            meta={"event": event.name, "event_id": event.id},
        )


TRIGGER = TriggerType(
    key="event",
    model=EventSpec,
    wrapper=EventTrigger,
    description="An event emitted by another flow.",
    source=EventSource,
    explain=_explain,
    order=50,
)
