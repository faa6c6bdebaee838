"""Running the sources of a node's flows: one `SourceHost` per flow whose trigger kind has a source.

A host builds the kind's `Source` (runtime/source_api.py) for the flow's trigger and runs it with a
`NodeSourceContext`, the only door a source has into the node: `accept` turns events into runs through
`Store.accept_poll` (runs, their keys and the cursor in one transaction) on the plan the node serves
now, `dead_letter` records an event that cannot run, `ready`/`paused` tell the node's backlog against
`service.max_backlog`, `emitted` reads the store's event log (woken by the node's `EmitSignal` when a
run emits). A source that fails is logged and started again after a backoff (1 s doubling
to 1 min), so one broken origin never stops the node; stopping cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runtime.connector_api import CallRequest
from runtime.engine.plan import CompiledFlow
from runtime.errors import SynclineError
from runtime.payload_schema import PayloadSchema, first_error
from runtime.source_api import NO_CURSOR, Accepted, EmittedEvent, Renderable, SourceContext, SourceEvent, TriggerType
from runtime.store.base import NewRun, RunFilter
from runtime.trigger_registry import default_trigger_registry, trigger_spec

if TYPE_CHECKING:
    from runtime.service.service import Service

log = logging.getLogger("syncline.sources")

BACKLOG_CHECK_INTERVAL = 0.5  # seconds between two reads of the node's backlog
SLOT_PATIENCE = 0.25  # seconds `ready` waits for a free run slot before events go to the queue
RESTART_FIRST, RESTART_MAX = 1.0, 60.0
ACTIVE_STATUSES = ("queued", "running", "retrying", "waiting", "held")


class NodeSourceContext(SourceContext):
    """The context one flow's source runs in (see runtime/source_api.py)."""

    def __init__(self, service: Service, flow: str, trigger_type: TriggerType, spec: Any) -> None:
        self._service = service
        self.flow = flow
        self.kind = trigger_type
        self.spec = spec
        self.trigger_id = f"{trigger_type.key}:{flow}"
        self.clock = service.clock
        self.log = logging.getLogger(f"syncline.source.{trigger_type.key}")
        self.last_progress: float | None = None
        self._cursor: Any = NO_CURSOR  # the last cursor read or written (this node is its only writer)
        self._emitted_start = service.event_log_start  # taken before the node took traffic
        self._compiled: dict[str, Renderable] = {}
        self._backlog_read_at: float | None = None
        self._over_limit = False
        self._schema: tuple[object, PayloadSchema] | None = None  # (the plan it was loaded for, the schema)

    # ------------------------------------------------------------------------------ events
    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        if not events and cursor is NO_CURSOR:
            return []
        service = self._service
        plan = service.plan
        flow = plan.flows.get(self.flow)
        if flow is None:
            raise SynclineError(f"flow {self.flow!r} is no longer deployed; its source stops")
        keyed: list[tuple[str, NewRun]] = []
        for event in events:
            new = self._new_run(flow, event)
            key = new.idempotency_key or event.key or uuid.uuid4().hex
            new.meta["source"] = {**event.meta, "key": key}
            keyed.append((key, new))
        if cursor is NO_CURSOR:
            cursor = await self.cursor()
        now = self.clock.time()
        owners = self._hand_over(keyed, now)
        try:
            created = await service.store.accept_poll(self.trigger_id, keyed, cursor, now=now)
        except BaseException:
            for _owner in owners.values():
                service.workers.unreserve()
            raise
        self._cursor = cursor
        by_key = {str(c.run.meta.get("source", {}).get("key")): c for c in created}
        for key, owner in owners.items():
            found = by_key.get(key)
            if found is not None and found.created and found.run.lease_owner == owner:
                service.workers.adopt(found.run, owner)
            else:
                service.workers.unreserve()
        accepted: list[Accepted] = []
        for event, (key, _new) in zip(events, keyed, strict=True):
            found = by_key.get(key)
            accepted.append(Accepted(event, found.run.id if found else None, bool(found and found.created)))
        new_runs = sum(1 for a in accepted if a.created)
        if new_runs:
            service.metrics.runs_accepted.labels(self.flow, self.kind.key).inc(new_runs)
            service.workers.notify()
        self.count("accepted", len(events))
        return accepted

    def _hand_over(self, keyed: list[tuple[str, NewRun]], now: float) -> dict[str, str]:
        """Create the runs without an ordering key already leased to this node while it has room, so
        they start as soon as they are committed (runtime/service/workers.py); key -> lease owner."""
        workers = self._service.workers
        owners: dict[str, str] = {}
        for key, new in keyed:
            if new.ordering_key is not None or key in owners:
                continue
            owner = workers.reserve()
            if owner is None:
                break
            new.status, new.lease_owner, new.lease_expires = "running", owner, now + self._service.lease
            owners[key] = owner
        return owners

    async def dead_letter(self, event: SourceEvent, reason: str, message: str) -> None:
        service = self._service
        flow = service.plan.flows.get(self.flow)
        if flow is None:
            raise SynclineError(f"flow {self.flow!r} is no longer deployed; its source stops")
        new = self._new_run(flow, event, keys=False)
        key = event.key or uuid.uuid4().hex
        new.meta["source"] = {**event.meta, "key": key}
        new.status = "dead_lettered"
        now = self.clock.time()
        created = await service.store.accept_poll(self.trigger_id, [(key, new)], await self.cursor(), now=now)
        error = {"class": "fatal", "reason": reason, "code": reason, "message": service.secrets.redact(message)}
        for run in created:  # a key seen before was dead-lettered (or run) already
            await service.store.update_run(run.run.id, {"error": error, "finished_at": now})
            await service.store.dead_letter(run.run.id, reason, error, now=now)
            service.metrics.dead_letters.labels(self.flow).inc()
        self.count(f"dead_lettered_{reason}")

    def schema_error(self, payload: Any) -> str | None:
        name = self.kind.field_value(self.spec, self.kind.schema_field)
        if not name:
            return None
        plan = self._service.plan
        if self._schema is None or self._schema[0] is not plan:
            entry = plan.check.context.load_schema(str(name)) if plan.check.context else None
            if entry is None or entry.schema is None:
                problem = entry.problem if entry is not None else "no project context"
                raise SynclineError(f"the schema of flow {self.flow!r} cannot be loaded: {problem}")
            self._schema = (plan, PayloadSchema(entry.schema))
        failure = first_error(self._schema[1], payload)
        return None if failure is None else f"at {failure[0]}: {failure[1]}"

    def _new_run(self, flow: CompiledFlow, event: SourceEvent, *, keys: bool = True) -> NewRun:
        executor = self._service.executor(self._service.plan)
        if keys:
            new = executor.new_run(flow, event.payload, trigger=self.kind.key, headers=dict(event.headers))
            new.parent_run_id = event.caused_by
        else:  # a poison event: its payload may not even be what the keys expect
            new = NewRun(flow=flow.name, input=event.payload, trigger=self.kind.key, flow_version=flow.version)
            new.headers = dict(event.headers)
            new.correlation_id = uuid.uuid4().hex
        if event.ordering_key is not None:
            new.ordering_key = event.ordering_key
        return new

    async def active_runs(self) -> int:
        active = RunFilter(flow=self.flow, status=list(ACTIVE_STATUSES), limit=100)
        return len(await self._service.store.list_runs(active))

    def delay(self, seconds: float) -> None:
        metrics = self._service.metrics
        metrics.child(metrics.source_delay, self.flow, self.kind.key).set(seconds)
        if self.kind.key == "schedule":  # its older name, kept for dashboards that read it
            metrics.schedule_lag.labels(self.flow).set(seconds)

    async def cursor(self) -> Any:
        if self._cursor is NO_CURSOR:
            self._cursor = await self._service.store.get_cursor(self.trigger_id)
        return self._cursor

    # ----------------------------------------------------------------------------- event log
    async def emitted(self, after: int, *, limit: int = 100, wait: float = 0.0) -> list[EmittedEvent]:
        store = self._service.store
        woken = self._service.events.emits.next()  # taken before the read: an emit after it wakes us
        events = await store.events_after(after, limit=limit)
        if not events and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), wait)
            events = await store.events_after(after, limit=limit)
        return [EmittedEvent(e.id, e.name, e.data, e.source_run_id) for e in events]

    def emitted_start(self) -> int:
        return self._emitted_start

    # ------------------------------------------------------------------------- backpressure
    async def ready(self) -> None:
        while await self._check_backlog():
            await self.clock.sleep(BACKLOG_CHECK_INTERVAL)
        # while every run slot is taken, events wait at their origin a moment (a slot frees soon on a
        # busy node): taken then, they start at once instead of going through the queue
        await self._service.workers.wait_for_room(SLOT_PATIENCE)

    def room(self) -> int:
        return self._service.workers.free

    def paused(self) -> bool:
        return self._over_limit

    async def _check_backlog(self) -> bool:
        now = self.clock.time()
        if self._backlog_read_at is None or now - self._backlog_read_at >= BACKLOG_CHECK_INTERVAL:
            self._backlog_read_at = now
            stats = await self._service.queue_stats()
            limit = self._service.plan.project.service.max_backlog
            was = self._over_limit
            self._over_limit = stats.get("depth", 0) > limit
            if self._over_limit != was:
                state = "pauses" if self._over_limit else "resumes"
                self.log.info("source of %s %s (backlog %d, limit %d)", self.flow, state, stats["depth"], limit)
        return self._over_limit

    # ------------------------------------------------------------------------------- reach
    def progressed(self) -> None:
        self.last_progress = self.clock.time()

    async def connector(self) -> Any:
        name = self.kind.field_value(self.spec, self.kind.connection_field)
        if not name:
            raise SynclineError(f"trigger kind {self.kind.key!r} declares no connection field")
        executor = self._service.executor(self._service.plan)
        return await executor.connectors.get(str(name))

    def redact(self, text: str) -> str:
        """Text with secrets and masked fields replaced by ***, for logs."""
        return self._service.redact_text(text)

    async def call(self, operation: str, params: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Any:
        service = self._service
        plan = service.plan
        compiled = plan.operation(operation)
        scope = {**service.service_scope(), "params": dict(params)}
        spec = compiled.fields.render(scope)
        executor = service.executor(plan)
        request = CallRequest(operation=compiled.name, spec=spec, params=dict(params), headers=dict(headers or {}))
        try:  # the same path as every call: the system's rate limit, concurrency and circuit breaker apply
            result = await executor.connectors.invoke(compiled, request, executor.limits)
        except Exception:
            service.metrics.connector_calls.labels(compiled.system, compiled.target, "error").inc()
            raise
        service.metrics.connector_calls.labels(compiled.system, compiled.target, "ok").inc()
        return result.output

    def compile(self, template: Any, name: str) -> Renderable:
        compiled = self._compiled.get(name)
        if compiled is None:
            engine = self._service.plan.engine
            compiled = engine.compile(template, name=f"{self.flow}:{self.kind.key}.{name}")
            self._compiled[name] = compiled
        return compiled

    def scope(self) -> dict[str, Any]:
        return self._service.service_scope()

    def count(self, name: str, value: float = 1.0) -> None:
        self._service.metrics.child(self._service.metrics.source_events, self.flow, self.kind.key, name).inc(value)


class SourceHost:
    """Runs one flow's source until stopped, starting it again after a failure."""

    def __init__(self, service: Service, flow: CompiledFlow, trigger_type: TriggerType) -> None:
        assert trigger_type.source is not None
        self.flow = flow
        self.kind = trigger_type
        self.spec = trigger_spec(flow.model.trigger)
        self.context = NodeSourceContext(service, flow.name, trigger_type, self.spec)
        self.source = trigger_type.source(self.spec)
        self.started_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.started_at = self.context.clock.time()
        self._task = asyncio.create_task(self._run(), name=f"source {self.context.trigger_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def since(self) -> float | None:
        """When the source last reached its origin (when it started, before that)."""
        return self.context.last_progress if self.context.last_progress is not None else self.started_at

    async def _run(self) -> None:
        delay = RESTART_FIRST
        while True:
            try:
                await self.source.run(self.context)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = self.context.redact(str(exc)) or type(exc).__name__
                log.warning("source %s failed (%s); starting it again in %.0fs", self.context.trigger_id, text, delay)
                self.context.count("restarts")
                await self.context.clock.sleep(delay)
                delay = min(delay * 2, RESTART_MAX)


def source_hosts(service: Service) -> list[SourceHost]:
    """A host for every flow of the served plan whose trigger kind has a source."""
    registry = default_trigger_registry()
    hosts = []
    for flow in service.plan.flows.values():
        trigger_type = registry.of(flow.model.trigger)
        if trigger_type.source is not None and flow.name not in service.skip_sources:
            hosts.append(SourceHost(service, flow, trigger_type))
    return hosts
