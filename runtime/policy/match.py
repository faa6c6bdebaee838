"""Matching Policy rules against compiled flows and operations at run time, through the one matcher
(`runtime/policy/rule_match.py`) that validate uses too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from runtime.policy.rule_match import (
    CallFacts,
    any_matches,
    flow_facts,
    match_call,
    match_flow_keys,
    pattern_matches,
)
from runtime.spec.governance import PolicyMatch, PolicyRule

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledFlow, CompiledOperation, Plan

__all__ = ["matches_flow", "matches_operation", "operation_rules", "pattern_matches", "rules"]


def flow_entities(flow: CompiledFlow, plan: Plan) -> set[str]:
    from runtime.compiler.walk import iter_steps
    from runtime.step_registry import step_type_of

    entities = {flow.model.source.entity} if flow.model.source else set()
    for ref in iter_steps(flow.model):
        handler = step_type_of(ref.step).handler
        if not handler.calls_operation:
            continue
        for reference in handler.references(ref.step):
            if reference.kind != "operation" or not reference.direct:
                continue
            connection, _, name = reference.name.partition(".")
            op = plan.connections.get(connection)
            if op is not None and name in op.operations and op.operations[name].entity:
                entities.add(str(op.operations[name].entity))
    return entities


def matches_flow(match: PolicyMatch, flow: CompiledFlow, plan: Plan) -> bool:
    """A rule applies to a flow as a whole (used for masks and triggers)."""
    model = flow.model
    if match_flow_keys(match, flow_facts(model, flow.name)) is None:
        return False
    if match.entity is not None and not any_matches(match.entity, flow_entities(flow, plan)):
        return False
    if match.system is not None:
        systems = {model.source.system} if model.source else set()
        systems |= {c.system for c in plan.connections.values()}
        if not any_matches(match.system, systems):
            return False
    return True


def operation_facts(operation: CompiledOperation) -> CallFacts:
    return CallFacts(operation.system, operation.connector, operation.target, operation.entity, operation.effect)


def matches_operation(match: PolicyMatch, flow: CompiledFlow, operation: CompiledOperation) -> bool:
    """A rule applies to one call of one operation in one flow."""
    return match_call(match, flow_facts(flow.model, flow.name), operation_facts(operation)) is not None


def rules(plan: Plan) -> Iterator[tuple[str, PolicyRule]]:
    for policy in plan.policies:
        for rule in policy.rules:
            yield policy.name, rule


def operation_rules(plan: Plan, flow: CompiledFlow, operation: CompiledOperation) -> list[PolicyRule]:
    return [rule for _, rule in rules(plan) if matches_operation(rule.match, flow, operation)]
