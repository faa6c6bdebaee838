"""`wait` steps fed by `emit`: the core's reader of the store's event log, and the node's emit signal.

Flows started by an event are not the core's business: the `event` trigger kind is a source
(runtime/triggers/event.py) reading the log through `SourceContext.emitted`. What stays here is what
only the core can do. `WaitDispatcher` follows the log (cursor `events:dispatcher`): each new event
whose name a `waiting` run waits for is added to that run's delivered events and the run becomes due
at once; `wake_if_missed` wakes a run that suspended after the event it waits for was emitted.
`EmitSignal` wakes the readers of the log (the dispatcher and the event sources' `emitted`) when a
run of this node emits, and when the dispatcher sees that the log grew (an emit on another node).

The dispatcher's cursor keeps the name it had when it also started event-triggered flows: where it
stands is where an event source with no cursor of its own begins (`event_log_start`), so an upgrade
from that dispatcher neither loses nor repeats an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from runtime.store.base import RunFilter, StoreError

if TYPE_CHECKING:
    from runtime.service.service import Service

log = logging.getLogger("syncline.events")
CURSOR = "events:dispatcher"


class EmitSignal:
    """Wakes every reader waiting for the event log to grow (no event is carried; readers read)."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def next(self) -> asyncio.Event:
        """The event set by the next `notify`: take it *before* reading the log, then wait on it, so
        an emit between the read and the wait is not missed."""
        return self._next

    def notify(self) -> None:
        self._next.set()
        self._next = asyncio.Event()


class WaitDispatcher:
    """Delivers emitted events to runs waiting for them (`wait` steps)."""

    def __init__(self, service: Service, *, interval: float = 0.2) -> None:
        self.service = service
        self.interval = interval
        self.emits = EmitSignal()
        self._task: asyncio.Task[None] | None = None
        self._seen: int | None = None  # the cursor at this node's last look (another node may move it)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def notify(self) -> None:
        """A run of this node emitted: wake the dispatcher and every reader of the log."""
        self.emits.notify()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def position(self) -> int:
        """Where the dispatcher stands in the log (the newest event's id before it first ran)."""
        store = self.service.store
        cursor = await store.get_cursor(CURSOR)
        return int(cursor) if cursor is not None else await store.last_event_id()

    async def _loop(self) -> None:
        while True:
            woken = self.emits.next()
            try:
                while await self.dispatch_once():
                    pass
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                log.warning("event dispatch failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self.interval)

    async def dispatch_once(self) -> int:
        """Deliver the events after the cursor to the runs waiting for them; how many were read."""
        store = self.service.store
        after = int(await store.get_cursor(CURSOR) or 0)
        moved, self._seen = self._seen is not None and after > self._seen, after
        events = await store.events_after(after, limit=100)
        if not events:
            if moved:  # another node read new events: the event sources here may not know yet
                self.emits.notify()
            return 0
        await self._deliver_to_waiting(events)  # before the cursor moves: a failure delivers them again
        await store.accept_poll(CURSOR, [], events[-1].id, now=self.service.clock.time())
        self._seen = events[-1].id
        self.emits.notify()
        return len(events)

    async def wake_if_missed(self, run: Any) -> None:
        """Right after a run suspended on a `wait`: wake it when an event it waits for was emitted
        since its last look (while it was still running, the dispatcher could not give it the event;
        an event emitted after this check finds the run waiting)."""
        store = self.service.store
        for wait in run.meta.get("waits", {}).values():
            checked = wait.get("checked")
            if checked is None:
                continue
            events = await store.events_after(int(checked), limit=1000)
            if any(event.name == wait.get("event") for event in events):
                await store.update_run(run.id, {"due_at": self.service.clock.time()})
                self.service.workers.notify()
                return

    async def _deliver_to_waiting(self, events: list[Any]) -> None:
        store = self.service.store
        names = {e.name for e in events}
        waiting = await store.list_runs(RunFilter(status=["waiting"], limit=1000))
        for run in waiting:
            wanted = {w.get("event") for w in run.meta.get("waits", {}).values()}
            matched = [{"name": e.name, "data": e.data, "id": e.id} for e in events if e.name in wanted & names]
            if matched:
                meta = {**run.meta, "events": [*run.meta.get("events", []), *matched]}
                await store.update_run(run.id, {"meta": meta, "due_at": self.service.clock.time()})
                self.service.workers.notify()
