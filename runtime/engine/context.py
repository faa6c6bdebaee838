"""The state of one run while it executes, and what a step handler is given (`StepCall`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runtime.expr import CLOCK_KEY, ENV_KEY, SECRETS_KEY, TAINT_KEY
from runtime.policy.provenance import Provenance
from runtime.store.base import EventRecord, OutboxMessage, RunRecord, StepRecord

if TYPE_CHECKING:
    from runtime.engine.executor import Executor
    from runtime.engine.plan import CompiledFlow, CompiledStep


def truthy(value: Any) -> bool:
    """Jinja-like truth: empty strings, lists, maps, 0 and None are false."""
    if isinstance(value, Decimal):
        return value != 0
    return bool(value)


@dataclass
class CallLog:
    """One call a run made (or, in a dry run, would make)."""

    step: str
    operation: str
    params: Any
    idempotency_key: str | None
    effect: str
    attempt: int = 1
    status: str = "pending"  # ok | error | planned | mocked
    output: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "operation": self.operation,
            "params": self.params,
            "idempotency_key": self.idempotency_key,
            "effect": self.effect,
            "attempt": self.attempt,
            "status": self.status,
            "output": self.output,
            "error": self.error,
        }


@dataclass
class RunState:
    run: RunRecord
    flow: CompiledFlow
    vars: dict[str, Any]
    steps: dict[str, Any]
    done: dict[str, StepRecord]
    root_run_id: str
    completed: list[tuple[str, CompiledStep, dict[str, Any]]] = field(default_factory=list)
    calls: list[CallLog] = field(default_factory=list)
    emitted: list[EventRecord] = field(default_factory=list)
    response: dict[str, Any] | None = None
    output: Any = None
    delivered_events: list[dict[str, Any]] = field(default_factory=list)
    suspend_meta: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None
    steps_run: int = 0  # step executions so far (the journal's records, then each step run here)
    max_steps: int = 10_000  # the run's step budget (`StepBudgetExceeded` past it)


@dataclass
class StepCall:
    """One attempt of one step: its scope, journal key and the executor's services."""

    executor: Executor
    state: RunState
    step: CompiledStep
    scope: dict[str, Any]
    key: str
    prefix: str
    attempt: int
    input: Any = None
    events: list[EventRecord] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)  # messages written with the step (`engine.outbox`)

    def render(self, compiled: Any, extra: dict[str, Any] | None = None) -> Any:
        scope = {**self.scope, **extra} if extra else self.scope
        return compiled.render(scope)

    def service_scope(self) -> dict[str, Any]:
        return {k: self.scope[k] for k in (CLOCK_KEY, SECRETS_KEY, ENV_KEY, TAINT_KEY) if k in self.scope}

    def outgoing_headers(self) -> dict[str, str]:
        run = self.state.run
        headers = {"X-Syncline-Run": run.id}
        if run.correlation_id:
            headers["X-Correlation-ID"] = run.correlation_id
        if self.state.provenance is not None:
            headers.update(self.state.provenance.headers())
        return headers
