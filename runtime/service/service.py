"""The service: the loaded project, the store, workers and triggers of one `syncline serve` node.

Runs always execute on the plan (project version) they were accepted on while this process still
holds it, so a reload never changes a run in flight. `reload()` validates the new project first and
swaps it in one assignment; a project with errors is refused and the old one keeps serving.

A claimed run whose earlier claims ended `poison_after` times in a row without a journaled step (it
crashed its worker or lost its lease each time: `RunRecord.stalls`) is not executed again: it is
dead-lettered with reason `poison`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.responses import Response

from runtime.clock import Clock, SystemClock
from runtime.compiler import CheckResult, check_project
from runtime.compiler.settings import Requirement, required_settings, unresolved
from runtime.engine.executor import Executor, RunResult
from runtime.engine.outbox import send as send_outbox
from runtime.engine.plan import CompiledFlow, Plan, build_plan
from runtime.errors import Diagnostic, ProjectError
from runtime.expr import CLOCK_KEY, ENV_KEY, SECRETS_KEY
from runtime.policy.mask import mask_text, masker_for_project, presenter_for_project
from runtime.secrets import SecretStore, env_resolver
from runtime.service.events import WaitDispatcher
from runtime.service.http_intake import (
    HttpRoute,
    accepted_response,
    build_routes,
    secret_renderer,
    sync_response,
    wait_for_response,
)
from runtime.service.logs import bind
from runtime.service.metrics import Metrics
from runtime.service.observe import ServiceObserver, otel_tracer
from runtime.service.outbox import OutboxDispatcher
from runtime.service.problems import PROBLEM_JSON, problem, problem_body
from runtime.service.sources import SourceHost, source_hosts
from runtime.service.workers import DEFAULT_CONCURRENCY, LeaseTimer, WorkerPool
from runtime.spec.common import parse_duration
from runtime.spec.flow import ScheduleTrigger
from runtime.store.base import FINAL_STATUSES, RunRecord, Store, StoreError
from runtime.store.factory import open_store
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.schedule import ScheduleSource

log = logging.getLogger("syncline.service")

KEPT_PLANS = 5  # project versions held for runs in flight after reloads

SYNC_STATUS = {"succeeded": 200, "filtered": 200, "exception": 422, "failed": 502, "dead_lettered": 502}


def outcome_response(run_id: str, status: str, output: Any, error: Any) -> dict[str, Any]:
    """A sync caller's answer for a run without a `respond` step: its status and output or error."""
    if status in ("succeeded", "filtered"):
        body = {"run_id": run_id, "status": status, "output": output}
    else:
        body = {"run_id": run_id, "status": status, "error": error}
    return {"status": SYNC_STATUS.get(status, 202), "body": body}


def load_plan(project_dir: Path) -> Plan:
    return build_plan(check_project(project_dir))


class Service:
    def __init__(
        self,
        project_dir: Path,
        store_url: str | None = None,
        *,
        workers: int = DEFAULT_CONCURRENCY,  # runs in flight at once (`WorkerPool`)
        node_id: str | None = None,
        lease: float = 30.0,
        clock: Clock | None = None,
        secrets: SecretStore | None = None,
        env: Any = None,
        poll_interval: float = 0.25,
        inline_retry_limit: float = 2.0,
        triggers: bool = True,
        checked: CheckResult | None = None,
        poison_after: int | None = None,
    ) -> None:
        self.project_dir = project_dir.resolve()
        self.store_url = store_url
        self.worker_count = workers
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.clock = clock or SystemClock()
        self.secrets = secrets or SecretStore()
        self.env = env or env_resolver()
        self.inline_retry_limit = inline_retry_limit
        self.enable_triggers = triggers
        self._poison_after = poison_after  # None: the project's `service.poison_after`
        self._checked = checked  # a check of the project just made by the caller (used once, at start)
        self.metrics = Metrics()
        self.observer = ServiceObserver(self.metrics, otel_tracer())
        self.accepting = False
        self.ready = False
        self.plan: Plan
        self.routes: list[HttpRoute] = []  # flows whose trigger kind takes HTTP requests (webhooks, plugins)
        self.required: list[Requirement] = []  # secrets and settings connections and webhooks need
        self.store: Store
        self._plans: dict[str, Plan] = {}
        self._executors: dict[str, Executor] = {}
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._inline: dict[asyncio.Task[Any], str] = {}  # sync runs executing inline -> run id
        self.workers = WorkerPool(self, workers, poll_interval=poll_interval)
        self.outbox = OutboxDispatcher(  # sends committed `effect: publish` messages (runtime/service/outbox.py)
            f"{self.node_id}/outbox",
            clock=self.clock,
            metrics=self.metrics,
            lease=lease,
            redact=self.secrets.redact,
            retention=lambda: parse_duration(self.plan.project.service.outbox_retention),
        )
        self.events = WaitDispatcher(self)  # `wait` steps; `events.notify()` when a run emitted
        self.event_log_start = 0  # where event sources with no cursor begin reading (set before traffic)
        self.sources: list[SourceHost] = []  # the running sources of flows (poll, queue, file, plugins)
        self.skip_sources: set[str] = set()  # flows whose source is not started (`syncline demo` without a broker)
        self._reload_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        checked, self._checked = self._checked, None
        plan = build_plan(checked) if checked is not None else load_plan(self.project_dir)
        self.store = open_store(self.store_url or plan.project.store, plan.root)
        await self.store.open()
        self._install(plan)
        if self.enable_triggers:  # before any run of this node can emit
            self.event_log_start = await self.events.position()
        self.workers.start()
        self.outbox.start(self.store, lambda message: send_outbox(self.executor(self.plan), message))
        if self.enable_triggers:
            self.events.start()
            self._start_triggers(plan)
        self.accepting = True
        self.ready = True
        log.info("syncline node %s serving %d flows", self.node_id, len(plan.flows))
        for missing in self.missing_settings():
            log.warning("not ready until it is set: %s", missing.describe())

    def missing_settings(self) -> list[Requirement]:
        """The secrets and settings the project's connections and webhooks need that are not set
        (asked again each time: a secret file may be mounted later). `/readyz` is 503 while any is."""
        return unresolved(self.required, self.secrets.resolve, self.env)

    async def stop(self, grace: float = 30.0) -> None:
        """Graceful shutdown: stop accepting, stop triggers, finish or release claimed runs."""
        self.accepting = False
        self.ready = False
        await self._stop_triggers()
        await self.events.stop()
        await asyncio.gather(self._stop_inline(grace), self.workers.stop(grace))
        await self.outbox.stop(grace)
        for executor in self._executors.values():
            with contextlib.suppress(Exception):
                await executor.aclose()
        await self.store.close()

    async def _stop_inline(self, grace: float) -> None:
        """Let sync runs executing inline finish within `grace`; release the rest to the queue."""
        if not self._inline:
            return
        running = dict(self._inline)
        _done, pending = await asyncio.wait(running, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            run_id = running[task]
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(StoreError):
                await self.store.release(run_id, self.node_id)
                log.info("released sync run %s at shutdown", run_id)
            waiting = self._responses.get(run_id)
            if waiting is not None and not waiting.done():  # its caller hears that the run is queued
                location = f"/api/v1/runs/{run_id}"
                body = {"run_id": run_id, "status": "queued", "location": location}
                waiting.set_result({"status": 202, "body": body, "headers": {"Location": location}})

    def _install(self, plan: Plan) -> None:
        self._plans.pop(plan.version, None)
        self._plans[plan.version] = plan
        self.routes = build_routes(self, plan)  # with the plan, so no request meets a route missing
        self.required = required_settings(plan.check.docs)
        self.plan = plan
        while len(self._plans) > KEPT_PLANS:  # runs of an older version go on with the current one
            oldest = next(iter(self._plans))
            del self._plans[oldest]
            executor = self._executors.pop(oldest, None)
            if executor is not None:
                task = asyncio.get_running_loop().create_task(executor.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def _start_triggers(self, plan: Plan) -> None:
        self.sources = source_hosts(self)
        for host in self.sources:
            host.start()

    async def _stop_triggers(self) -> None:
        for host in self.sources:
            await host.stop()
        self.sources = []

    async def stop_sources(self) -> None:
        """Stop taking events from every source (schedules, polls, brokers, files); runs go on."""
        await self._stop_triggers()

    async def reload(self) -> list[Diagnostic]:
        """Load, check and compile the project again; swap it in only when it has no errors."""
        async with self._reload_lock:
            result = await asyncio.to_thread(check_project, self.project_dir)
            if result.errors:
                self.metrics.reloads.labels("rejected").inc()
                log.warning("reload rejected: %d problems", len(result.errors))
                return result.errors
            try:
                plan = build_plan(result)
            except ProjectError as exc:
                self.metrics.reloads.labels("rejected").inc()
                return exc.diagnostics
            if self.enable_triggers:
                self.event_log_start = await self.events.position()  # for flows new in this version
                await self._stop_triggers()
            self._install(plan)
            if self.enable_triggers:
                self._start_triggers(plan)
            self.metrics.reloads.labels("applied").inc()
            log.info("reloaded project version %s (%d flows)", plan.version, len(plan.flows))
            return []

    # ------------------------------------------------------------------------------ helpers
    def executor(self, plan: Plan) -> Executor:
        executor = self._executors.get(plan.version)
        if executor is None:
            executor = Executor(
                plan,
                self.store,
                clock=self.clock,
                secrets=self.secrets,
                env=self.env,
                worker=self.node_id,
                inline_retry_limit=self.inline_retry_limit,
                on_response=self._on_response,
                observer=self.observer,
                outbox=True,
                on_outbox=self.outbox.notify,
            )
            self._executors[plan.version] = executor
        return executor

    def plan_for(self, run: RunRecord) -> Plan:
        """The plan a run started on, while this process holds it; else the current one."""
        current = self.plan
        if run.flow in current.flows and current.flows[run.flow].version == run.flow_version:
            return current
        for plan in reversed(list(self._plans.values())):
            flow = plan.flows.get(run.flow)
            if flow is not None and flow.version == run.flow_version:
                return plan
        return current

    @property
    def poison_after(self) -> int:
        """Claims in a row without progress after which a run is dead-lettered as poison."""
        return self._poison_after or self.plan.project.service.poison_after

    def service_scope(self) -> dict[str, Any]:
        return {CLOCK_KEY: self.clock, SECRETS_KEY: self.secrets.resolve, ENV_KEY: self.env}

    def present(self, value: Any) -> Any:
        """A value as it may leave Syncline for people: masked fields and secrets replaced by ***."""
        plan = getattr(self, "plan", None)
        if plan is not None:
            value = presenter_for_project(plan)(value)
        return self.secrets.redact_value(value)

    def redact_text(self, text: str) -> str:
        """Log text with secrets and masked fields (as `"email": "..."`) replaced by ***."""
        plan = getattr(self, "plan", None)
        text = self.secrets.redact(text)
        return mask_text(text, masker_for_project(plan).fields) if plan is not None else text

    def render_secret(self, plan: Plan, template: str | None) -> str | None:
        return secret_renderer(plan, self.secrets.resolve, self.env, template)

    def _on_response(self, run_id: str, response: dict[str, Any]) -> None:
        future = self._responses.get(run_id)
        if future is not None and not future.done():
            future.set_result(response)

    # ------------------------------------------------------------------------------ execution
    async def execute(self, run: RunRecord, *, empty_journal: bool = False) -> RunResult:
        """Execute a run this node holds; `empty_journal`: its claim found nothing journaled, so the
        journal is not read back."""
        if run.stalls >= self.poison_after:
            return await self._poison(run)
        plan = self.plan_for(run)
        if run.flow not in plan.flows:
            await self.store.update_run(
                run.id,
                {
                    "status": "failed",
                    "lease_owner": None,
                    "lease_expires": None,
                    "error": {"message": f"flow {run.flow!r} is no longer deployed"},
                },
            )
            raise ProjectError([Diagnostic.make("SL029", f"flow {run.flow!r} is no longer deployed")])
        started = self.clock.time()
        result = await self.executor(plan).execute(run, empty_journal=empty_journal)
        self.metrics.child(self.metrics.run_latency, run.flow).observe(max(self.clock.time() - started, 0.0))
        if result.status in FINAL_STATUSES:
            self.metrics.child(self.metrics.runs, run.flow, result.status).inc()
        if result.status == "dead_lettered":
            self.metrics.dead_letters.labels(run.flow).inc()
        for call in result.calls:
            try:
                system = plan.operation(call.operation).system
            except KeyError:
                system = call.operation.partition(".")[0]
            self.metrics.child(self.metrics.connector_calls, system, call.operation, call.status).inc()
        if result.emitted:
            self.events.notify()
        if result.status == "waiting":
            await self.events.wake_if_missed(result.run)
        waiting = self._responses.get(run.id)  # a sync caller waiting for a run a worker executed
        if waiting is not None and not waiting.done():
            waiting.set_result(self._fallback_response(result))
        return result

    async def _poison(self, run: RunRecord) -> RunResult:
        """Dead-letter a run that crashed or lost its lease `stalls` times in a row without progress."""
        limit = self.poison_after
        error = {
            "class": "fatal",
            "reason": "poison",
            "code": "poison_run",
            "message": (
                f"poison run: run {run.id} of flow {run.flow!r} was claimed {run.stalls} times in a row without "
                f"journaling a step (its worker crashed or lost the lease each time; poison_after: {limit}); "
                "it is dead-lettered instead of being executed again. Find the cause in the logs of its "
                "last attempts, fix it, then replay the run"
            ),
            "stalls": run.stalls,
            "poison_after": limit,
        }
        now = self.clock.time()
        await self.store.update_run(run.id, {"error": error, "finished_at": now})
        await self.store.dead_letter(run.id, "poison", error, now=now)
        self.metrics.child(self.metrics.runs, run.flow, "dead_lettered").inc()
        self.metrics.dead_letters.labels(run.flow).inc()
        ended = dataclasses.replace(
            run, status="dead_lettered", error=error, finished_at=now, lease_owner=None, lease_expires=None
        )
        result = RunResult(ended, "dead_lettered", None, error)
        waiting = self._responses.get(run.id)
        if waiting is not None and not waiting.done():
            waiting.set_result(self._fallback_response(result))
        return result

    async def accept_request(
        self,
        flow: CompiledFlow,
        trigger: str,
        payload: Any,
        headers: dict[str, str],
        correlation: str | None,
        digest: str | None,
        sync_timeout: float | None,
    ) -> Response:
        """Commit a run for one request taken by an HTTP trigger kind (`trigger`: its key), then answer:
        202 with its location (200 for a repeated idempotency key, 409 for that key with another body),
        or with a `sync_timeout` the flow's `respond` (202 when it takes longer). Store errors and keys
        that cannot be computed are raised (runtime/service/http_intake.py answers them)."""
        plan = self.plan
        executor = self.executor(plan)
        new = executor.new_run(
            flow, payload, trigger=trigger, headers=headers, correlation_id=correlation, request_hash=digest
        )
        sync = sync_timeout is not None
        inline = sync and new.ordering_key is None  # a run with an ordering key waits for its turn in the queue
        now = self.clock.time()
        # async: a run without an ordering key is handed to this node's workers when they have room
        owner = self.workers.reserve() if not sync and new.ordering_key is None else None
        if inline or owner is not None:
            new.status = "running"
            new.lease_owner = owner or self.node_id
            new.lease_expires = now + self.lease
        try:
            created = await self.store.create_run(new, now=now)
        except BaseException:
            if owner is not None:
                self.workers.unreserve()
            raise
        run = created.run
        if owner is not None:
            if created.created:
                self.workers.adopt(run, owner)
            else:
                self.workers.unreserve()
        if not created.created:
            if created.conflict:
                self.metrics.webhook_rejections.labels(flow.name, "idempotency_conflict").inc()
                return problem(
                    409, "idempotency_conflict", "this idempotency key was used with a different body", run_id=run.id
                )
            if sync and run.status in FINAL_STATUSES:
                return self._final_sync(run)
            return accepted_response(run.id, run.status, created=False)
        self.metrics.child(self.metrics.runs_accepted, flow.name, trigger).inc()
        if sync_timeout is None:
            self.workers.notify()
            return accepted_response(run.id, run.status, created=True)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[run.id] = future
        if inline:
            executor.mark_fresh(run.id)
            task = asyncio.create_task(self._run_inline(run, future))
            self._inline[task] = run.id
            task.add_done_callback(lambda done: self._inline.pop(done, None))
        else:
            self.workers.notify()
        response = await wait_for_response(future, sync_timeout)
        self._responses.pop(run.id, None)
        if response is not None:
            return sync_response(response)
        try:  # the run may have ended elsewhere (another worker or node) within the timeout
            latest = await self.store.get_run(run.id)
        except StoreError:
            latest = None
        if latest is not None and latest.status in FINAL_STATUSES:
            return self._final_sync(latest)
        return accepted_response(run.id, latest.status if latest is not None else run.status, created=True)

    async def _run_inline(self, run: RunRecord, future: asyncio.Future[dict[str, Any]]) -> None:
        bind(run_id=run.id, flow=run.flow, correlation_id=run.correlation_id)  # this task's own context
        lease = LeaseTimer(self, run.id, self.node_id)
        try:
            result = await self.execute(run)
            if not future.done():
                future.set_result(self._fallback_response(result))
        except StoreError as exc:
            # the run is committed and resumes from its journal once its lease expires; its caller
            # hears where to follow it, and when to ask again
            self.metrics.store_errors.inc()
            log.warning("store failed during inline run %s: %s (it resumes after its lease)", run.id, exc)
            if not future.done():
                location = f"/api/v1/runs/{run.id}"
                body = problem_body(
                    503,
                    "store_unavailable",
                    "the run could not be journaled; it resumes by itself, follow it at its location",
                    run_id=run.id,
                    location=location,
                )
                headers = {
                    "Retry-After": str(max(1, round(self.lease))),
                    "Location": location,
                    "Content-Type": PROBLEM_JSON,
                }
                future.set_result({"status": 503, "body": body, "headers": headers})
        except Exception as exc:
            log.exception("inline run %s failed", run.id)
            if not future.done():
                body = problem_body(500, "internal", self.secrets.redact(str(exc)), run_id=run.id)
                future.set_result({"status": 500, "body": body, "headers": {"Content-Type": PROBLEM_JSON}})
        finally:
            lease.cancel()

    def _fallback_response(self, result: RunResult) -> dict[str, Any]:
        output = self.secrets.redact_value(result.output)  # as journaled: secrets and derived values masked
        return outcome_response(result.run.id, result.status, output, result.error)

    def _final_sync(self, run: RunRecord) -> Response:
        """The answer to a repeated sync delivery of an ended run: what the first caller got."""
        response = run.meta.get("response")
        if isinstance(response, dict):
            return sync_response(response)
        return sync_response(outcome_response(run.id, run.status, run.output, run.error))

    async def fire_schedule(self, flow_name: str, fire_time: datetime) -> bool:
        """Accept the run of one fire time of a flow's schedule now, as its source does when the time
        comes (True when a run was created)."""
        flow = self.plan.flows.get(flow_name)
        if flow is None or not isinstance(flow.model.trigger, ScheduleTrigger):
            return False
        host = next((h for h in self.sources if h.flow.name == flow_name), None)
        if host is None:  # sources not started (triggers off): a host of its own, not running
            host = SourceHost(self, flow, default_trigger_registry().of(flow.model.trigger))
        assert isinstance(host.source, ScheduleSource)
        return await host.source.fire(host.context, fire_time)

    async def queue_stats(self) -> dict[str, float]:
        stats = await self.store.queue_stats(now=self.clock.time())
        self.metrics.queue_depth.set(stats.get("depth", 0))
        self.metrics.queue_oldest.set(stats.get("oldest_age", 0))
        return stats
