"""The conformance kit for sources: what every trigger kind's `Source` must do, checked without a node.

A plugin author (and every built-in source) runs `check_source` against their source with an
`Origin`: a small adapter that puts events at the real origin (publishes messages, drops files,
answers polls) and tells which keys they should arrive with. The kit runs the source with a
`KitContext`, an in-memory `SourceContext` that keeps accepted events by key like the store does, and
checks that the source:

1. turns every event put at the origin into exactly one accepted event, with the expected keys;
2. never loses an event whose `accept` failed: the source fails (or retries), and once it runs again
   the origin delivers the event again and it is accepted then (acknowledge only after commit);
3. does not make a second run of an event it sees again after a restart (keys are stable);
4. takes nothing while the node says it is too busy (`paused()` / `ready()`), and goes on after;
5. stops promptly when cancelled.

A source that reads Syncline's own event log (`emitted`, as the `event` kind does) is given a
`KitEventLog`: its origin emits into it, and `check_source(..., event_log=log)` reads from it.

    from runtime.testing.source_kit import check_source
    await check_source(TRIGGER, spec, MyOrigin(...), connector=my_live_connector)

Each check raises `AssertionError` with what was expected and what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.clock import Clock, SystemClock
from runtime.expr import ExpressionEngine
from runtime.payload_schema import PayloadSchema, first_error
from runtime.source_api import (
    NO_CURSOR,
    Accepted,
    EmittedEvent,
    Renderable,
    Source,
    SourceContext,
    SourceEvent,
    TriggerType,
)

__all__ = ["KitClock", "KitContext", "KitEventLog", "Origin", "check_source", "wait_for"]


class Origin(Protocol):
    """Where a source takes its events from, as a test drives it."""

    async def put(self, count: int) -> list[str]:
        """Put `count` new events at the origin; return the keys they should be accepted with."""
        ...


class AcceptRefused(RuntimeError):
    """Raised by `KitContext.accept` while `refuse_accepts` is set (as a store that is down would)."""


class KitClock(SystemClock):
    """Real time, but no sleep lasts longer than `cap` seconds: a source's poll interval or reconnect
    backoff does not slow the kit down."""

    def __init__(self, cap: float = 0.02) -> None:
        self.cap = cap

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(seconds, 0.0), self.cap))


class KitEventLog:
    """An in-memory event log, as the store keeps what `emit` steps send (ids from 1 up)."""

    def __init__(self) -> None:
        self.events: list[EmittedEvent] = []
        self._grew = asyncio.Event()

    def emit(self, name: str, data: Any, *, source_run_id: str | None = None) -> EmittedEvent:
        event = EmittedEvent(len(self.events) + 1, name, data, source_run_id)
        self.events.append(event)
        self._grew.set()
        self._grew = asyncio.Event()
        return event

    async def read(self, after: int, *, limit: int = 100, wait: float = 0.0) -> list[EmittedEvent]:
        grew = self._grew
        found = [e for e in self.events if e.id > after][:limit]
        if not found and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(grew.wait(), wait)
            found = [e for e in self.events if e.id > after][:limit]
        return found


@dataclass
class KitContext(SourceContext):
    """An in-memory `SourceContext`: accepted events by key, a cursor, dead letters and a pause switch."""

    flow: str = "kit"
    trigger_id: str = "kit:kit"
    clock: Clock = field(default_factory=lambda: KitClock())
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("syncline.source_kit"))
    live_connector: Any = None
    calls: Callable[[str, Mapping[str, Any]], Any] | None = None
    accepted: dict[str, SourceEvent] = field(default_factory=dict)
    accepts: int = 0  # accept() calls that committed
    dead: list[tuple[SourceEvent, str, str]] = field(default_factory=list)
    stored_cursor: Any = None
    pause: bool = False
    free_slots: int = 64  # what `room()` says: free run slots of the node
    refuse_accepts: bool = False
    progress: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    active: int = 0  # what active_runs() answers
    delays: list[float] = field(default_factory=list)
    schema: dict[str, Any] | None = None  # what schema_error() checks payloads against (None: nothing)
    event_log: KitEventLog = field(default_factory=KitEventLog)  # what emitted() reads
    log_start: int = 0  # what emitted_start() answers
    _engine: ExpressionEngine = field(default_factory=ExpressionEngine)

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        if self.pause:
            self.violations.append(f"accept() of {len(events)} events while the node said it was too busy")
        if self.refuse_accepts:
            raise AcceptRefused("the kit refuses this accept (as a store that is down would)")
        result = []
        for event in events:
            key = event.key or f"unkeyed-{len(self.accepted)}"
            created = key not in self.accepted
            if created:
                self.accepted[key] = event
            result.append(Accepted(event, key, created))
        if cursor is not NO_CURSOR:
            self.stored_cursor = cursor
        self.accepts += 1
        return result

    async def dead_letter(self, event: SourceEvent, reason: str, message: str) -> None:
        self.dead.append((event, reason, message))

    def schema_error(self, payload: Any) -> str | None:
        if self.schema is None:
            return None
        failure = first_error(PayloadSchema(self.schema), payload)
        return None if failure is None else f"at {failure[0]}: {failure[1]}"

    async def cursor(self) -> Any:
        return self.stored_cursor

    async def emitted(self, after: int, *, limit: int = 100, wait: float = 0.0) -> list[EmittedEvent]:
        return await self.event_log.read(after, limit=limit, wait=wait)

    def emitted_start(self) -> int:
        return self.log_start

    async def active_runs(self) -> int:
        return self.active

    def delay(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def ready(self) -> None:
        while self.pause:
            await asyncio.sleep(0.01)

    def paused(self) -> bool:
        return self.pause

    def room(self) -> int:
        return self.free_slots

    def progressed(self) -> None:
        self.progress += 1

    async def connector(self) -> Any:
        if self.live_connector is None:
            raise AssertionError("the source asked for a connector but the kit was given none")
        return self.live_connector

    async def call(self, operation: str, params: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Any:
        if self.calls is None:
            raise AssertionError(f"the source called {operation} but the kit was given no `calls`")
        result = self.calls(operation, params)
        return await result if asyncio.iscoroutine(result) else result

    def compile(self, template: Any, name: str) -> Renderable:
        return self._engine.compile(template, name=name)

    def scope(self) -> dict[str, Any]:
        return {}

    def redact(self, text: str) -> str:
        return text

    def count(self, name: str, value: float = 1.0) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + value


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until `condition()` holds (checked every 10 ms), or fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        await asyncio.sleep(0.01)


class _Running:
    """A source running in a task, restarted after a failure as the node's SourceHost does."""

    def __init__(self, make: Callable[[], Source], ctx: KitContext) -> None:
        self.make = make
        self.ctx = ctx
        self.failures = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.make().run(self.ctx)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                await asyncio.sleep(0.05)

    async def stop(self, within: float = 5.0) -> None:
        self.task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), within)
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            raise AssertionError(f"the source did not stop within {within}s of being cancelled") from None


async def check_source(
    trigger_type: TriggerType,
    spec: Any,
    origin: Origin,
    *,
    connector: Any = None,
    calls: Callable[[str, Mapping[str, Any]], Any] | None = None,
    clock: Clock | None = None,
    timeout: float = 15.0,
    event_log: KitEventLog | None = None,
) -> KitContext:
    """Run the five checks of the module docstring against `trigger_type`'s source for `spec`."""
    assert trigger_type.source is not None, f"trigger kind {trigger_type.key!r} has no source to check"
    assert isinstance(spec, trigger_type.model), f"spec must be a {trigger_type.model.__name__}"
    if trigger_type.explain is not None:
        explained = trigger_type.explain(spec)
        assert isinstance(explained, dict), "explain(spec) must give a mapping"

    def make() -> Source:
        assert trigger_type.source is not None
        return trigger_type.source(spec)

    ctx = KitContext(clock=clock or KitClock(), live_connector=connector, calls=calls)
    if event_log is not None:
        ctx.event_log = event_log
    ctx.trigger_id = f"{trigger_type.key}:kit"

    # 1. every event becomes exactly one accepted event, with the expected keys
    running = _Running(make, ctx)
    try:
        keys = await origin.put(3)
        await wait_for(lambda: set(keys) <= set(ctx.accepted), f"events {keys} were accepted", timeout)
        assert len(ctx.accepted) == 3, f"expected 3 accepted events, got keys {sorted(ctx.accepted)}"

        # 2. an event whose accept failed is not lost
        ctx.refuse_accepts = True
        failures_before = running.failures
        lost = await origin.put(1)
        with contextlib.suppress(AssertionError):  # a source may retry accept itself instead of failing
            await wait_for(lambda: running.failures > failures_before, "the source failed on a refused accept", 0.5)
        ctx.refuse_accepts = False
        await wait_for(
            lambda: set(lost) <= set(ctx.accepted),
            f"event {lost} (whose accept failed) came back and was accepted",
            timeout,
        )
    finally:
        await running.stop()

    # 3. a restart makes no second run of what was accepted
    before = dict(ctx.accepted)
    running = _Running(make, ctx)
    try:
        more = await origin.put(1)
        await wait_for(lambda: set(more) <= set(ctx.accepted), f"event {more} was accepted after a restart", timeout)
        unexpected = sorted(set(ctx.accepted) - set(before) - set(more))
        assert not unexpected, f"after a restart the source accepted unexpected keys: {unexpected}"

        # 4. nothing is taken while paused; everything after
        ctx.pause = True
        held = await origin.put(2)
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: bool(set(held) & set(ctx.accepted)), "an event was accepted while paused", 0.5)
        assert not set(held) & set(ctx.accepted), "the source accepted events while the node was paused"
        assert not ctx.violations, "; ".join(ctx.violations)
        ctx.pause = False
        await wait_for(lambda: set(held) <= set(ctx.accepted), f"events {held} were accepted after the pause", timeout)
    finally:
        # 5. cancellation stops it promptly
        await running.stop()
    return ctx
