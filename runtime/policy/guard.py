"""Run-time policy checks made before every call: echo suppression and hop limit (provenance),
holds for approval (`action: hold` with a `when` condition), and maintenance windows
(`window` with `action: buffer`: writes wait until the window ends, in acceptance order)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from runtime.engine.context import truthy
from runtime.engine.errors import RunSuspended
from runtime.policy.match import operation_rules
from runtime.spec.common import parse_duration
from runtime.spec.governance import PolicyRule
from runtime.triggers.cron import cron_trigger, latest_fire

if TYPE_CHECKING:
    from runtime.engine.context import StepCall
    from runtime.engine.plan import CompiledOperation

SUPPRESSED = "suppressed"
PROCEED = "proceed"


def window_end(rule: PolicyRule, now: float) -> float | None:
    """When the rule's maintenance window ends, if `now` is inside it."""
    assert rule.window is not None
    trigger = cron_trigger(rule.window.cron, rule.window.timezone)
    length = parse_duration(rule.window.duration)
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    start = latest_fire(trigger, moment, horizon=length + 60)
    if start is None:
        return None
    end = start.timestamp() + length
    return end if now < end else None


def before_call(call: StepCall, operation: CompiledOperation, params: Any) -> str:
    """PROCEED, SUPPRESSED (an echo), or raises RunSuspended (held, or buffered by a window)."""
    executor = call.executor
    state = call.state
    provenance = state.provenance
    writes = operation.effect != "read"
    if writes and provenance is not None and provenance.origin == operation.system and provenance.hops > 1:
        executor.observer.echo_suppressed(state.run, operation.system)
        return SUPPRESSED
    if executor.dry_run:
        return PROCEED
    plan = executor.plan
    cache: dict[tuple[str, str], list[PolicyRule]] = plan.__dict__.setdefault("_op_rules", {})
    key = (state.flow.name, operation.target)
    if key not in cache:
        cache[key] = operation_rules(plan, state.flow, operation)
    for rule in cache[key]:
        if rule.action == "hold" and rule.when:
            decision = state.run.meta.get("approvals", {}).get(call.key)
            if decision is not None and decision.get("decision") == "approved":
                continue
            condition = plan.engine.compile_expression(rule.when, name=f"policy:{rule.id}")
            if truthy(condition.render({**call.scope, "params": params})):
                hold = {
                    "rule": rule.id,
                    "step": call.key,
                    "operation": operation.target,
                    "approvers": rule.approvers,
                    "params": params,
                    "since": executor.clock.time(),
                }
                raise RunSuspended(
                    "held", due_at=None, reason=f"held for approval by policy {rule.id}", meta={"hold": hold}
                )
        if rule.action == "buffer" and rule.window is not None and writes:
            end = window_end(rule, executor.clock.time())
            if end is not None:
                raise RunSuspended("retrying", due_at=end, reason=f"maintenance window {rule.id} until {end:.0f}")
    return PROCEED
