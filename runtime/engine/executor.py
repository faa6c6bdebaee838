"""The executor: runs one run of a compiled flow, step by step, journaling every step.

A step whose key is already in the run's journal as succeeded is not executed again: its recorded
output is restored. That is how a run resumes after a crash (or a released lease) and how a replay
skips what is done. Each step attempt is bounded by its `timeout`; a failure the step's `retry.on`
covers is retried with exponential backoff and full jitter (a wait longer than
`inline_retry_limit` suspends the run as `retrying` with its due time instead of sleeping). After
the last attempt, `on_error` decides: `fail` (default), `continue`, `dead_letter` or `goto`. When a
run fails, the `compensate` steps of completed steps run in reverse order, each journaled.

Every run has a step budget (the flow's `max_steps`, else the project's `defaults.max_steps`): each
step execution counts (steps of every `foreach` item and sub-flow, each repeat through `goto`, and
the records already in the journal of a resumed run). The step past the budget is not executed: the
run ends dead-lettered with `step_budget_exceeded`, whatever `on_error` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from runtime.clock import Clock, SystemClock
from runtime.engine.connectors import ConnectorPool
from runtime.engine.context import CallLog, RunState, StepCall, truthy
from runtime.engine.deadletter import dead_letter_reason
from runtime.engine.errors import (
    BusinessException,
    RunFiltered,
    RunSuspended,
    StepBudgetExceeded,
    StepFailed,
    classify,
)
from runtime.engine.plan import CompiledFlow, CompiledOperation, CompiledStep, Plan
from runtime.engine.retry import RetryPolicy
from runtime.expr import CLOCK_KEY, ENV_KEY, SECRETS_KEY, TAINT_KEY, Taint
from runtime.expr.secrets import MASK
from runtime.policy.limits import SystemLimits
from runtime.policy.provenance import derive
from runtime.secrets import SecretStore, env_resolver
from runtime.spec.flow import GotoAction
from runtime.step_registry import default_step_registry, is_pure, step_type
from runtime.store.base import (
    CreatedRun,
    EventRecord,
    JournalEntry,
    NewRun,
    OutboxMessage,
    RunChanges,
    RunRecord,
    RunStatus,
    StepRecord,
    Store,
)

log = logging.getLogger("syncline.engine")

# Steps with no effect outside the run (`effects = "pure"`, runtime/step_api.py) need not have their
# records written before the next step. Pure steps declared `recomputable` whose journaled output had
# secret values masked run again when a run resumes or is replayed (the journal never holds those
# values), so later steps get the real ones.


@dataclass
class RunResult:
    run: RunRecord
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    calls: list[CallLog] = field(default_factory=list)
    emitted: list[EventRecord] = field(default_factory=list)
    response: dict[str, Any] | None = None
    journal: list[StepRecord] = field(default_factory=list)


class ExecutionObserver:
    """Hooks for metrics and tracing; the base class does nothing."""

    def step_span(self, run: RunRecord, step_key: str, kind: str) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def step_finished(self, run: RunRecord, kind: str, status: str, seconds: float) -> None:
        return None

    def step_retried(self, run: RunRecord, step_key: str) -> None:
        return None

    def echo_suppressed(self, run: RunRecord, system: str) -> None:
        return None

    def connector_called(self, system: str, operation: str, status_class: str, seconds: float) -> None:
        return None

    def rate_limit_waited(self, system: str, seconds: float) -> None:
        return None


@dataclass
class _Goto:
    target: str


class _DeadLetterRequested(Exception):
    def __init__(self, failure: StepFailed) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Executor:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        *,
        clock: Clock | None = None,
        secrets: SecretStore | None = None,
        env: Callable[[str], str | None] | None = None,
        connectors: ConnectorPool | None = None,
        dry_run: bool = False,
        worker: str = "local",
        inline_retry_limit: float = float("inf"),
        on_response: Callable[[str, dict[str, Any]], None] | None = None,
        observer: ExecutionObserver | None = None,
        outbox: bool = False,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.clock = clock or SystemClock()
        self.secrets = secrets or SecretStore()
        self.env = env or env_resolver()
        self.connectors = connectors or ConnectorPool(plan, self.secrets, self.env)
        self.dry_run = dry_run
        self.worker = worker
        self.inline_retry_limit = inline_retry_limit
        self.on_response = on_response
        self.observer = observer or ExecutionObserver()
        # `effect: publish` calls of `call` steps go through the transactional outbox (runtime/engine/outbox.py):
        # their messages are written with the step's journal entry, then `on_outbox` is told
        self.outbox = outbox
        self.on_outbox = on_outbox
        self.limits = SystemLimits(plan, self.clock)
        self.limits.on_wait = self.observer.rate_limit_waited
        if self.connectors.on_call is None:  # a pool handed in (a dry run's) keeps its owner's observer
            self.connectors.on_call = self.observer.connector_called
        self._fresh: set[str] = set()  # runs this executor just created: nothing to read from the journal
        # The journal of a run in progress is written in batches (see `_record`): its step records not
        # written yet, the runs among them whose unwritten records include a side effect, and `respond`
        # answers that wait for those records to be written before they go out.
        self._unsaved: dict[str, list[JournalEntry]] = {}
        self._unsaved_outbox: dict[str, list[OutboxMessage]] = {}  # messages of those records
        self._unsaved_effects: set[str] = set()
        self._held_responses: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------ intake
    def new_run(
        self,
        flow: CompiledFlow,
        payload: Any,
        *,
        trigger: str = "manual",
        headers: dict[str, str] | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> NewRun:
        """Evaluate the flow's keys for one event (idempotency, ordering, correlation, business keys)."""
        scope = {"input": payload, "headers": headers or {}, **self._services()}
        if idempotency_key is None and flow.idempotency_key is not None:
            value = flow.idempotency_key.render(scope)
            idempotency_key = None if value in (None, "") else str(value)
        ordering = flow.ordering_key.render(scope) if flow.ordering_key is not None else None
        if correlation_id is None and flow.correlation_id is not None:
            value = flow.correlation_id.render(scope)
            correlation_id = None if value in (None, "") else str(value)
        business = {name: str(v) for name, c in flow.business_keys.items() if (v := c.render(scope)) not in (None, "")}
        return NewRun(
            flow=flow.name,
            input=payload,
            trigger=trigger,
            flow_version=flow.version,
            headers=headers or {},
            correlation_id=correlation_id or uuid.uuid4().hex,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            ordering_key=None if ordering in (None, "") else str(ordering),
            business_keys=business,
        )

    async def submit(self, flow_name: str, payload: Any, **kwargs: Any) -> CreatedRun:
        flow = self.plan.flow(flow_name)
        created = await self.store.create_run(self.new_run(flow, payload, **kwargs), now=self.clock.time())
        if created.created:
            self._fresh.add(created.run.id)
        return created

    async def run_flow(self, flow_name: str, payload: Any, **kwargs: Any) -> RunResult:
        """Create (or find, by idempotency key) a run and execute it to its end."""
        created = await self.submit(flow_name, payload, **kwargs)
        run = created.run
        if not created.created and run.status in (
            "succeeded",
            "failed",
            "dead_lettered",
            "filtered",
            "exception",
            "rejected",
            "cancelled",
        ):
            return RunResult(run, run.status, run.output, run.error, journal=await self.store.journal(run.id))
        return await self.execute(run)

    # ---------------------------------------------------------------------------- execution
    def _services(self) -> dict[str, Any]:
        return {CLOCK_KEY: self.clock, SECRETS_KEY: self.secrets.resolve, ENV_KEY: self.env}

    async def execute(
        self, run: RunRecord, *, events: Sequence[dict[str, Any]] = (), empty_journal: bool = False
    ) -> RunResult:
        """Execute (or resume) `run` until it ends or suspends; the store holds the outcome.
        `empty_journal`: the caller knows the run has journaled nothing (its claim said so), so the
        journal is not read back."""
        flow = self.plan.flow(run.flow)
        now = self.clock.time()
        fresh = run.id in self._fresh and not run.replay_of
        self._fresh.discard(run.id)
        journal = [] if fresh or (empty_journal and not run.replay_of) else await self.store.journal(run.id)
        done = {r.step_key: r for r in journal if r.status in ("succeeded", "skipped", "compensated")}
        if run.replay_of:
            done = await self._replayed_journal(run, done)
        state = RunState(
            run=run,
            flow=flow,
            vars={},
            steps={},
            done=done,
            root_run_id=str(run.meta.get("root_run_id") or run.replay_of or run.id),
            delivered_events=list(events) + list(run.meta.get("events", [])),
            provenance=derive(run.headers, flow.name, flow.model.source.system if flow.model.source else None),
            steps_run=len(journal),
            max_steps=self.max_steps(flow),
        )
        scope = self._scope(state)
        if flow.vars is not None:
            state.vars.update(flow.vars.render(scope))
        if not (fresh and run.status == "running"):  # a run created running (inline) is already marked
            await self.store.update_run(
                run.id,
                {
                    "status": "running",
                    "started_at": run.started_at or now,
                    "attempt": run.attempt + 1 if run.meta.get("executed") else run.attempt,
                    "meta": {**run.meta, "executed": True},
                },
            )
        try:
            return await self._execute(run, state, scope)
        finally:  # written, or lost with the run's lease: the next attempt resumes from the journal
            self._forget(run.id)

    async def _execute(self, run: RunRecord, state: RunState, scope: dict[str, Any]) -> RunResult:
        flow = state.flow
        status: RunStatus = "succeeded"
        output: Any = None
        error: dict[str, Any] | None = None
        try:
            self._check_hops(state)
            state.output = await self.run_steps(flow.steps, scope, state, prefix="")
            output = state.response["body"] if state.response is not None and state.output is None else state.output
        except RunFiltered as exc:
            status, error = "filtered", {"class": "filtered", "message": str(exc)}
        except RunSuspended as exc:
            suspension: RunChanges = {
                "status": exc.status,  # type: ignore[typeddict-item]
                "due_at": exc.due_at,
                "meta": {**run.meta, **exc.meta, "suspended": exc.reason},
                "lease_owner": None,
                "lease_expires": None,
            }
            await self.flush(run.id, suspension)
            record = await self.store.get_run(run.id)
            return self._result(record or run, exc.status, None, {"reason": exc.reason}, state)
        except BusinessException as exc:
            await self._compensate(state)
            status, error = "exception", exc.as_dict()
            await self._notify(state, scope, error)
        except _DeadLetterRequested as exc:
            await self._compensate(state)
            status, error = "dead_lettered", exc.failure.as_dict()
        except StepBudgetExceeded as exc:
            await self._compensate(state)
            status, error = "dead_lettered", exc.as_dict()
        except StepFailed as exc:
            await self._compensate(state)
            error = exc.as_dict()
            status = "dead_lettered" if flow.model.on_failure == "dead_letter" else "failed"
        error = self.secrets.redact_value(error) if error else None
        finished = self.clock.time()
        if status == "dead_lettered":
            # the lease stays until `dead_letter` ends the run (status and lease in one transaction): should
            # that write fail, the run is still claimable once its lease expires, never stranded as running
            await self.flush(run.id, {"finished_at": finished, "error": error})
            await self.store.dead_letter(run.id, dead_letter_reason(error, state.calls), error, now=finished)
        else:
            changes: RunChanges = {
                "status": status,
                "output": self.secrets.redact_value(output),
                "error": error,
                "finished_at": finished,
                "lease_owner": None,
                "lease_expires": None,
                "due_at": None,
            }
            if state.response is not None:
                changes["meta"] = {**run.meta, "executed": True, "response": self.secrets.redact_value(state.response)}
            await self.flush(run.id, changes)  # the steps not written yet and the outcome: one transaction
        ended = dataclasses.replace(
            run,
            status=status,
            output=output,
            error=error,
            finished_at=finished,
            lease_owner=None,
            lease_expires=None,
            due_at=None,
        )
        return self._result(ended, status, output, error, state)

    def max_steps(self, flow: CompiledFlow) -> int:
        """The step budget of a run of `flow`."""
        return flow.model.max_steps or self.plan.project.defaults.max_steps

    def _check_hops(self, state: RunState) -> None:
        limit = self.plan.project.defaults.hop_limit
        if state.provenance is not None and state.provenance.hops > limit:
            chain = " → ".join(state.provenance.chain)
            raise RunFiltered(f"hop limit {limit} reached (chain: {chain}); the message stops here")

    def _result(
        self, run: RunRecord, status: str, output: Any, error: dict[str, Any] | None, state: RunState
    ) -> RunResult:
        return RunResult(
            run=run,
            status=status,
            output=output,
            error=error,
            calls=state.calls,
            emitted=state.emitted,
            response=state.response,
        )

    def _scope(self, state: RunState) -> dict[str, Any]:
        run = state.run
        return {
            "input": run.input,
            "headers": run.headers,
            "vars": state.vars,
            "steps": state.steps,
            "run": {
                "id": run.id,
                "correlation_id": run.correlation_id,
                "flow": run.flow,
                "attempt": run.attempt + 1,
                "trigger": run.trigger,
                "started_at": run.started_at or run.created_at,
            },
            **self._services(),
            TAINT_KEY: Taint(),  # on once the run calls secret(): values derived from it stay marked
        }

    async def _replayed_journal(self, run: RunRecord, done: dict[str, StepRecord]) -> dict[str, StepRecord]:
        """For a replay, steps the original run completed count as done: all of them, or with
        `replay_from_step` only those recorded before that step (it and everything after run again)."""
        original = await self.store.journal(run.replay_of or "")
        merged = dict(done)
        start = run.replay_from_step
        for record in original:
            if start and (
                record.step_key == start or record.step_key.startswith((start + "[", start + ".", start + "/"))
            ):
                break
            if record.status in ("succeeded", "skipped") and record.step_key not in merged:
                merged[record.step_key] = record
        return merged

    async def run_steps(
        self, steps: Sequence[CompiledStep], scope: dict[str, Any], state: RunState, *, prefix: str
    ) -> Any:
        """Run a list of steps in order; returns the last step's output."""
        last: Any = None
        index = 0
        while index < len(steps):
            step = steps[index]
            outcome = await self._step(step, scope, state, prefix)
            if isinstance(outcome, _Goto):
                targets = [i for i, s in enumerate(steps) if s.id == outcome.target]
                if not targets:
                    raise StepFailed(f"goto {outcome.target!r}: no such step in this block", reason="goto")
                index = targets[0]
                continue
            last = outcome
            index += 1
        return last

    async def _step(self, step: CompiledStep, scope: dict[str, Any], state: RunState, prefix: str) -> Any:
        key = prefix + step.id
        recorded = state.done.get(key)
        if recorded is not None and not (_recomputable(step.kind) and _holds_mask(recorded.output)):
            return self._restore(step, recorded, scope, state, key)
        state.steps_run += 1
        if state.steps_run > state.max_steps:
            raise StepBudgetExceeded(state.flow.name, state.max_steps, key)
        if step.condition is not None and not truthy(step.condition.render(scope)):
            now = self.clock.time()
            await self._record(
                StepRecord(
                    run_id=state.run.id, step_key=key, kind=step.kind, status="skipped", started_at=now, finished_at=now
                ),
                [],
            )
            scope["steps"][step.id] = {"output": None, "skipped": True}
            return None
        from runtime.steps import handler_for

        handler = handler_for(step.kind)
        if not is_pure(step.kind):
            await self.before_effect(state.run.id)
        attempt = int(state.run.meta.get("attempts", {}).get(key, 0)) + 1
        while True:
            call = StepCall(self, state, step, scope, key, prefix, attempt)
            started = self.clock.time()
            try:
                with self.observer.step_span(state.run, key, step.kind):
                    if step.timeout is not None:
                        output = await asyncio.wait_for(handler.execute(call), step.timeout)
                    else:
                        output = await handler.execute(call)
            except StepBudgetExceeded:  # a nested step (foreach, switch, sub-flow) used up the budget
                raise
            except Exception as exc:  # every failure is classified; nothing escapes untranslated
                failure = classify(exc)
                self.observer.step_finished(state.run, step.kind, "failed", self.clock.time() - started)
                if isinstance(failure, RunFiltered | RunSuspended):
                    if isinstance(failure, RunFiltered):
                        await self._record(self._record_of(call, "succeeded", {"filtered": True}, None, started), [])
                    raise failure from None
                if isinstance(failure, BusinessException):
                    await self._record(self._record_of(call, "failed", None, failure.as_dict(), started), [])
                    raise failure from None
                if attempt < step.retry.attempts and step.retry.covers(failure):
                    delay = step.retry.delay(attempt, failure)
                    log.info(
                        "step %s attempt %d failed (%s); retrying in %.2fs",
                        key,
                        attempt,
                        failure.reason,
                        delay,
                        extra={"fields": {"step": key}},
                    )
                    self.observer.step_retried(state.run, key)
                    if delay > self.inline_retry_limit:
                        attempts = {**state.run.meta.get("attempts", {}), key: attempt}
                        raise RunSuspended(
                            "retrying",
                            due_at=self.clock.time() + delay,
                            reason=f"step {key} retries",
                            meta={"attempts": attempts},
                        ) from None
                    await self.clock.sleep(delay)
                    attempt += 1
                    continue
                await self._record(self._record_of(call, "failed", None, failure.as_dict(), started), [])
                return await self._on_error(step, failure, scope)
            record = self._record_of(call, "succeeded", output, None, started)
            self.observer.step_finished(state.run, step.kind, "succeeded", record.finished_at - started)
            await self._record(record, call.events, call.outbox)
            state.emitted.extend(call.events)
            scope["steps"][step.id] = {"output": output}
            if step.compensate is not None:
                state.completed.append((key, step, scope))
            return output

    def _record_of(
        self, call: StepCall, status: str, output: Any, error: dict[str, Any] | None, started: float
    ) -> StepRecord:
        redact = self.secrets.redact_value
        return StepRecord(
            run_id=call.state.run.id,
            step_key=call.key,
            kind=call.step.kind,
            status=status,  # type: ignore[arg-type]
            attempts=call.attempt,
            input=redact(call.input),
            output=redact(output),
            error=redact(error) if error else None,
            started_at=started,
            finished_at=self.clock.time(),
        )

    def mark_fresh(self, run_id: str) -> None:
        """The caller just created this run: `execute` need not read its (empty) journal."""
        self._fresh.add(run_id)

    async def before_effect(self, run_id: str) -> None:
        """Before a side effect: write the run's unwritten records if they include an earlier effect
        (or hold a `respond` answer). Records of pure steps alone are not worth a write: lost in a
        crash, those steps simply run again, with the same result."""
        if run_id in self._unsaved_effects or run_id in self._held_responses:
            await self.flush(run_id)

    async def flush(self, run_id: str, changes: RunChanges | None = None) -> None:
        """Write the run's unwritten step records and `changes` to the run in one transaction, then
        let a held `respond` answer go out."""
        entries = self._unsaved.pop(run_id, [])
        messages = self._unsaved_outbox.pop(run_id, [])
        self._unsaved_effects.discard(run_id)
        if entries or changes:
            try:
                if messages:  # in the same transaction as the steps that made them
                    await self.store.write_journal(run_id, entries, changes, outbox=messages)
                else:
                    await self.store.write_journal(run_id, entries, changes)
            except BaseException:
                self._unsaved.setdefault(run_id, [])[:0] = entries  # still unwritten, in order
                if messages:
                    self._unsaved_outbox.setdefault(run_id, [])[:0] = messages
                if any(not is_pure(r.kind) or events for r, events in entries):
                    self._unsaved_effects.add(run_id)
                raise
            if messages and self.on_outbox is not None:
                self.on_outbox()
        response = self._held_responses.pop(run_id, None)
        if response is not None and self.on_response is not None:
            self.on_response(run_id, response)

    def send_response(self, run_id: str, response: dict[str, Any]) -> None:
        """A `respond` answer: out now, or — when side effects before it are not written yet — as soon
        as they are (so a caller never holds an answer the journal could lose)."""
        if run_id in self._unsaved_effects:
            self._held_responses[run_id] = response
        elif self.on_response is not None:
            self.on_response(run_id, response)

    def _forget(self, run_id: str) -> None:
        self._unsaved.pop(run_id, None)
        self._unsaved_outbox.pop(run_id, None)
        self._unsaved_effects.discard(run_id)
        self._held_responses.pop(run_id, None)

    async def _record(
        self, record: StepRecord, events: Sequence[EventRecord], outbox: Sequence[OutboxMessage] = ()
    ) -> None:
        """Journal a step: kept with the run's unwritten records, which are written before the next
        side effect when they include one (`before_effect`), at a suspension, and with the run's
        outcome at its end — one transaction per batch. Events and outbox messages are written with
        their step."""
        kept = [
            EventRecord(
                name=e.name,
                data=self.secrets.redact_value(e.data),
                key=e.key,
                source_run_id=e.source_run_id,
                source_step=e.source_step,
            )
            for e in events
        ]
        self._unsaved.setdefault(record.run_id, []).append((record, kept))
        if outbox:
            self._unsaved_outbox.setdefault(record.run_id, []).extend(outbox)
        if not is_pure(record.kind) or kept or outbox:
            self._unsaved_effects.add(record.run_id)

    def _restore(
        self, step: CompiledStep, recorded: StepRecord, scope: dict[str, Any], state: RunState, key: str
    ) -> Any:
        output = recorded.output
        if recorded.status == "skipped":
            scope["steps"][step.id] = {"output": None, "skipped": True}
            return None
        step_type(step.kind).handler.restore(output, _Resume(state, step.id))
        scope["steps"][step.id] = {"output": output}
        if step.compensate is not None:
            state.completed.append((key, step, scope))
        return output

    async def _on_error(self, step: CompiledStep, failure: StepFailed, scope: dict[str, Any]) -> Any:
        action = step.model.on_error
        if action == "continue":
            scope["steps"][step.id] = {"output": None, "error": failure.as_dict()}
            return None
        if isinstance(action, GotoAction):
            scope["steps"][step.id] = {"output": None, "error": failure.as_dict()}
            return _Goto(action.goto)
        if action == "dead_letter":
            raise _DeadLetterRequested(failure)
        raise failure

    async def _compensate(self, state: RunState) -> None:
        """Run the compensations of completed steps in reverse order, each journaled."""
        from runtime.steps import handler_for

        for key, step, scope in reversed(state.completed):
            assert step.compensate is not None
            comp = step.compensate
            comp_key = f"{key}~compensate"
            if comp_key in state.done:
                continue
            call = StepCall(self, state, comp, scope, comp_key, "", 1)
            started = self.clock.time()
            try:
                output = await handler_for(comp.kind).execute(call)
            except Exception as exc:
                failure = classify(exc)
                error = failure.as_dict() if hasattr(failure, "as_dict") else {"message": str(failure)}
                log.warning("compensation %s failed: %s", comp_key, self.secrets.redact(str(failure)))
                await self._record(self._record_of(call, "compensation_failed", None, error, started), [])
                continue
            await self._record(self._record_of(call, "compensated", output, None, started), call.events, call.outbox)

    async def _notify(self, state: RunState, scope: dict[str, Any], error: dict[str, Any]) -> None:
        """The flow's `on_exception` call; its failure is logged, never changes the run's outcome."""
        if state.flow.notice is None:
            return
        from runtime.steps.call import invoke_operation

        operation, params = state.flow.notice
        notice_scope = {**scope, "exception": self.secrets.redact_value(error)}
        step = CompiledStep(
            id="on_exception",
            kind="on_exception",
            model=state.flow.model.steps[0],
            loc=("on_exception",),
            condition=None,
            fields={},
            retry=RetryPolicy(),
            timeout=None,
            idempotency_key=None,
        )
        call = StepCall(self, state, step, notice_scope, "on_exception", "", 1)
        try:
            await invoke_operation(call, operation, params.render(notice_scope), None)
        except Exception as exc:
            log.warning("exception notice for run %s failed: %s", state.run.id, self.secrets.redact(str(exc)))

    async def invoke(
        self, call: StepCall, operation: CompiledOperation, params: Any, key: str | None, *, queue: bool = False
    ) -> Any:
        from runtime.steps.call import invoke_operation

        return await invoke_operation(call, operation, params, key, queue=queue)

    async def run_subflow(self, flow: CompiledFlow, payload: Any, call: StepCall) -> Any:
        sub_state = call.state
        scope = {**call.scope, "input": payload, "steps": {}, "vars": dict(call.scope["vars"])}
        if flow.vars is not None:
            scope["vars"].update(flow.vars.render(scope))
        return await self.run_steps(flow.steps, scope, sub_state, prefix=f"{call.key}/")

    async def aclose(self) -> None:
        await self.connectors.aclose()


def _recomputable(kind: str) -> bool:
    found = default_step_registry().get(kind)
    return found is not None and found.handler.effects == "pure" and found.handler.recomputable


class _Resume:
    """What a step kind's `restore` may change in the run (runtime/step_api.py `Resume`)."""

    def __init__(self, state: RunState, step_id: str) -> None:
        self._state = state
        self._step_id = step_id

    def set_vars(self, values: Mapping[str, Any]) -> None:
        self._state.vars.update(values)

    def set_response(self, response: dict[str, Any]) -> None:
        self._state.response = response

    def stop_filtered(self) -> NoReturn:
        raise RunFiltered(f"filtered by step {self._step_id!r}")


def _holds_mask(value: Any) -> bool:
    """Whether a journaled value had a secret masked in it (a string holding `***`)."""
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(_holds_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_mask(v) for v in value)
    return False
