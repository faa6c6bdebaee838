"""Event triggers and `wait` steps fed by `emit`: a dispatcher follows the store's event log.

Each new event starts a run of every flow whose `event` trigger names it (and whose `match`, if any,
holds), created through `Store.accept_poll` with the event id as the item key, so an event starts each
flow once even when several nodes dispatch. Runs waiting for the event (`wait` step) get it added to
their delivered events and become due at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from runtime.engine.context import truthy
from runtime.spec.flow import EventTrigger
from runtime.store.base import RunFilter, StoreError

if TYPE_CHECKING:
    from runtime.service.service import Service

log = logging.getLogger("syncline.events")
CURSOR = "events:dispatcher"


class EventDispatcher:
    def __init__(self, service: Service, *, interval: float = 0.2) -> None:
        self.service = service
        self.interval = interval
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def notify(self) -> None:
        self.wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                while await self.dispatch_once():
                    pass
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                log.warning("event dispatch failed: %s", exc)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)

    async def dispatch_once(self) -> int:
        service = self.service
        store = service.store
        after = await store.get_cursor(CURSOR) or 0
        events = await store.events_after(int(after), limit=100)
        if not events:
            return 0
        plan = service.plan
        executor = service.executor(plan)
        runs: list[tuple[str, Any]] = []
        for event in events:
            for flow in plan.flows.values():
                trigger = flow.model.trigger
                if not isinstance(trigger, EventTrigger) or trigger.event.name != event.name:
                    continue
                if trigger.event.match:
                    condition = plan.engine.compile_expression(trigger.event.match)
                    if not truthy(condition.render({"event": event.data, "input": event.data})):
                        continue
                new = executor.new_run(flow, event.data, trigger="event")
                new.parent_run_id = event.source_run_id
                runs.append((f"{event.id}:{flow.name}", new))
        created = await store.accept_poll(CURSOR, runs, events[-1].id, now=service.clock.time())
        for run in created:
            service.metrics.runs_accepted.labels(run.run.flow, "event").inc()
        await self._deliver_to_waiting(events)
        if created:
            service.workers.notify()
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
