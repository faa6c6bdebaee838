"""Matching Policy rules against flows and operations (all keys given in `match` must match)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from runtime.spec.flow import trigger_kind
from runtime.spec.governance import PolicyMatch, PolicyRule

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledFlow, CompiledOperation, Plan


def _one(pattern: str | list[str] | None, value: str | None) -> bool:
    if pattern is None:
        return True
    if value is None:
        return False
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _strs(value: str | list[Any] | None) -> str | list[str] | None:
    return value if value is None or isinstance(value, str) else [str(v) for v in value]


def _any(pattern: str | list[str] | None, values: Iterable[str]) -> bool:
    if pattern is None:
        return True
    return any(_one(pattern, v) for v in values)


def flow_entities(flow: CompiledFlow, plan: Plan) -> set[str]:
    from runtime.compiler.walk import iter_steps
    from runtime.spec.flow import CallStep

    entities = {flow.model.source.entity} if flow.model.source else set()
    for ref in iter_steps(flow.model):
        if isinstance(ref.step, CallStep):
            connection, _, name = ref.step.call.partition(".")
            op = plan.connections.get(connection)
            if op is not None and name in op.operations and op.operations[name].entity:
                entities.add(str(op.operations[name].entity))
    return entities


def matches_flow(match: PolicyMatch, flow: CompiledFlow, plan: Plan) -> bool:
    """A rule applies to a flow as a whole (used for masks and triggers)."""
    model = flow.model
    if not _one(match.flow, flow.name):
        return False
    if match.trigger is not None and (trigger_kind(model.trigger) or "").split(".")[-1] != match.trigger:
        return False
    if match.label and any(model.labels.get(k) != v for k, v in match.label.items()):
        return False
    if match.entity is not None and not _any(match.entity, flow_entities(flow, plan)):
        return False
    if match.system is not None:
        systems = {model.source.system} if model.source else set()
        systems |= {c.system for c in plan.connections.values()}
        if not _any(match.system, systems):
            return False
    return True


def matches_operation(match: PolicyMatch, flow: CompiledFlow, operation: CompiledOperation) -> bool:
    """A rule applies to one call of one operation in one flow."""
    model = flow.model
    if not _one(match.flow, flow.name):
        return False
    if match.trigger is not None and (trigger_kind(model.trigger) or "").split(".")[-1] != match.trigger:
        return False
    if match.label and any(model.labels.get(k) != v for k, v in match.label.items()):
        return False
    return (
        _one(match.system, operation.system)
        and _one(match.connector, operation.connector)
        and _one(match.operation, operation.target)
        and _one(match.entity, operation.entity)
        and _one(_strs(match.effect), operation.effect)
    )


def rules(plan: Plan) -> Iterator[tuple[str, PolicyRule]]:
    for policy in plan.policies:
        for rule in policy.rules:
            yield policy.name, rule


def operation_rules(plan: Plan, flow: CompiledFlow, operation: CompiledOperation) -> list[PolicyRule]:
    return [rule for _, rule in rules(plan) if matches_operation(rule.match, flow, operation)]
