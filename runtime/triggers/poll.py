"""`trigger: {poll: ...}`: call an operation every interval, turn each new item into a run.

The cursor (high-water mark) is read from the store, passed as the call's cursor parameter, and the
next cursor, computed from the fetched items, is committed in the same transaction that creates the
runs (`SourceContext.accept`), together with each item's key: an item whose key was seen is skipped.
When the source fails, the next poll waits `backoff`, doubling up to eight intervals. The call goes
through `SourceContext.call`, like a flow's calls, so the system's Policy limits apply to it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from runtime.expr import TAINT_KEY, PathCompiler, Taint
from runtime.source_api import SourceContext, SourceEvent, TriggerType
from runtime.spec.common import AnyValue, Duration, JsonPath, Model, Template, parse_duration

_PATHS = PathCompiler()


class PollCursor(Model):
    """The high-water mark a poll keeps between fires."""

    param: str = Field(description="Parameter of the call that receives the cursor.", examples=["updated_since"])
    value: Template = Field(
        description="Expression computing the next cursor from `items` (the items just fetched).",
        examples=["{{ items | map(attribute='updated_at') | max }}"],
    )
    initial: AnyValue = Field(None, description="Cursor for the very first poll.", examples=["2026-01-01T00:00:00Z"])


class PollSpec(Model):
    """Call an operation periodically; each new item becomes one run."""

    call: str = Field(description="`connection.operation` to call.", examples=["billing.list_invoices"])
    with_: dict[str, AnyValue] = Field(default_factory=dict, alias="with", description="Call parameters.")
    every: Duration = Field(description="Interval between polls.", examples=["5m"])
    cursor: PollCursor | None = Field(None, description="Persisted high-water mark.")
    items: JsonPath = Field("$[*]", description="JSONPath selecting the items in the response.", examples=["$.data[*]"])
    key: Template = Field(description="Identity of an item; a key seen before is skipped.", examples=["{{ item.id }}"])
    backoff: Duration = Field("1m", description="First wait after the source fails (doubles up to `every` x 8).")


class PollTrigger(Model):
    poll: PollSpec


def _explain(spec: PollSpec) -> dict[str, Any]:
    return {
        "call": spec.call,
        "every": spec.every,
        "items": spec.items,
        "key": spec.key,
        "cursor": spec.cursor.param if spec.cursor else "none: every poll reads everything",
    }


class PollSource:
    """The source of one flow's poll trigger."""

    def __init__(self, spec: PollSpec) -> None:
        self.spec = spec
        self.every = parse_duration(spec.every)
        self.failures = 0
        self._items = _PATHS.compile(spec.items)

    async def run(self, ctx: SourceContext) -> None:
        while True:
            try:
                created = await self.poll_once(ctx)
                self.failures = 0
                if created:
                    ctx.log.info("poll %s accepted %d new items", ctx.flow, created)
                delay = self.every
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = min(parse_duration(self.spec.backoff) * 2 ** (self.failures - 1), self.every * 8)
                ctx.count("failures")
                ctx.log.warning("poll %s failed (%s); next try in %.1fs", ctx.flow, ctx.redact(str(exc)), delay)
            await ctx.clock.sleep(delay)

    async def poll_once(self, ctx: SourceContext) -> int:
        """One poll: returns how many runs were created."""
        spec = self.spec
        scope = {**ctx.scope(), TAINT_KEY: Taint()}  # values derived from a secret stay marked
        cursor = await ctx.cursor()
        if cursor is None and spec.cursor is not None:
            cursor = spec.cursor.initial
        params = ctx.compile(dict(spec.with_), "poll.with").render(scope)
        if spec.cursor is not None and cursor is not None:
            params[spec.cursor.param] = cursor
        output = await ctx.call(spec.call, params, headers={"X-Syncline-Trigger": ctx.trigger_id})
        ctx.progressed()
        items = self._items.find(output)
        if not items:
            return 0
        next_cursor = cursor
        if spec.cursor is not None:
            next_cursor = ctx.compile(spec.cursor.value, "poll.cursor").render(
                {**scope, "items": items, "cursor": cursor}
            )
        key = ctx.compile(spec.key, "poll.key")
        events = [SourceEvent(item, key=str(key.render({**scope, "item": item}))) for item in items]
        await ctx.ready()  # while the node's backlog is over its limit, wait before committing more
        accepted = await ctx.accept(events, cursor=next_cursor)
        return sum(1 for a in accepted if a.created)


TRIGGER = TriggerType(
    key="poll",
    model=PollSpec,
    wrapper=PollTrigger,
    description="Call an operation every interval; each new item becomes one run.",
    source=PollSource,
    call_field="call",
    explain=_explain,
    order=30,
)
