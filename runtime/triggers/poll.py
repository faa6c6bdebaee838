"""Poll triggers: call an operation every interval, turn each new item into a run.

The cursor (high-water mark) is read from the store, passed as the call's cursor parameter, and the
next cursor, computed from the fetched items, is stored in the same transaction that creates the
runs (`Store.accept_poll`), together with each item's key: an item whose key was seen is skipped.
When the source fails, the next poll waits `backoff`, doubling up to eight intervals. The call goes
through `ConnectorPool.invoke`, like a flow's calls, so the system's Policy limits apply to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from runtime.connector_api import CallRequest
from runtime.expr import TAINT_KEY, PathCompiler, Taint
from runtime.spec.common import parse_duration
from runtime.spec.flow import PollSpec, PollTrigger

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledFlow
    from runtime.service.service import Service

log = logging.getLogger("syncline.poll")
_PATHS = PathCompiler()


class Poller:
    def __init__(self, service: Service, flow: CompiledFlow) -> None:
        assert isinstance(flow.model.trigger, PollTrigger)
        self.service = service
        self.flow = flow
        self.spec: PollSpec = flow.model.trigger.poll
        self.trigger_id = f"poll:{flow.name}"
        self.every = parse_duration(self.spec.every)
        self.failures = 0
        self.started_at: float | None = None  # clock times, for the poll lag gauge of /metrics
        self.last_success: float | None = None
        self._task: asyncio.Task[None] | None = None
        engine = service.plan.engine
        self._params = engine.compile(dict(self.spec.with_), name=f"{flow.name}:poll.with")
        self._key = engine.compile(self.spec.key, name=f"{flow.name}:poll.key")
        self._cursor = (
            engine.compile(self.spec.cursor.value, name=f"{flow.name}:poll.cursor") if self.spec.cursor else None
        )
        self._items = _PATHS.compile(self.spec.items)

    def start(self) -> None:
        self.started_at = self.service.clock.time()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                created = await self.poll_once()
                self.failures = 0
                self.last_success = self.service.clock.time()
                if created:
                    log.info("poll %s accepted %d new items", self.flow.name, created)
                delay = self.every
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = min(parse_duration(self.spec.backoff) * 2 ** (self.failures - 1), self.every * 8)
                log.warning(
                    "poll %s failed (%s); next try in %.1fs",
                    self.flow.name,
                    self.service.secrets.redact(str(exc)),
                    delay,
                )
            await self.service.clock.sleep(delay)

    async def poll_once(self) -> int:
        """One poll: returns how many runs were created."""
        service = self.service
        store = service.store
        scope = {**service.service_scope(), TAINT_KEY: Taint()}  # values derived from a secret stay marked
        cursor = await store.get_cursor(self.trigger_id)
        if cursor is None and self.spec.cursor is not None:
            cursor = self.spec.cursor.initial
        params = self._params.render(scope)
        if self.spec.cursor is not None and cursor is not None:
            params[self.spec.cursor.param] = cursor
        operation = service.plan.operation(self.spec.call)
        spec = operation.fields.render({**scope, "params": params})
        executor = service.executor(service.plan)
        request = CallRequest(
            operation=operation.name, spec=spec, params=params, headers={"X-Syncline-Trigger": self.trigger_id}
        )
        try:  # the same path as every call: the system's rate limit, concurrency and circuit breaker apply
            result = await executor.connectors.invoke(operation, request, executor.limits)
        except Exception:
            service.metrics.connector_calls.labels(operation.system, operation.target, "error").inc()
            raise
        service.metrics.connector_calls.labels(operation.system, operation.target, "ok").inc()
        items = self._items.find(result.output)
        if not items:
            return 0
        next_cursor = cursor
        if self._cursor is not None:
            next_cursor = self._cursor.render({**scope, "items": items, "cursor": cursor})
        runs: list[tuple[str, Any]] = []
        for item in items:
            key = str(self._key.render({**scope, "item": item}))
            new = executor.new_run(self.flow, item, trigger="poll")
            runs.append((key, new))
        created = await store.accept_poll(self.trigger_id, runs, next_cursor, now=service.clock.time())
        service.metrics.runs_accepted.labels(self.flow.name, "poll").inc(len(created))
        if created:
            service.workers.notify()
        return len(created)
