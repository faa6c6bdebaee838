"""What applies to a flow and each of its steps, and why: the data behind `syncline explain`.

`explain_flow` returns plain JSON-able dicts: the trigger (auth, schema, idempotency, ordering) and
the policies matching the flow; per step its retry policy, timeout, `on_error`, idempotency key,
what it writes and the ownership verdict, and every policy rule matching it, with the match keys
that made it apply, what it requires (met or not) and what it does at run time.
"""

from __future__ import annotations

from typing import Any

from runtime.compiler.callsites import CallSite, call_sites
from runtime.compiler.context import CheckContext
from runtime.compiler.ownership import decide, ownership_index
from runtime.compiler.policy_static import (
    RuleRef,
    effective_retry,
    flow_findings,
    forbid_problems,
    literal_host,
    match_flow,
    match_site,
    policy_rules,
    site_findings,
    trigger_name,
)
from runtime.compiler.walk import iter_steps
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import GotoAction, Retry, StepBase
from runtime.step_registry import step_type_of
from runtime.trigger_registry import trigger_spec, trigger_type_of

Report = dict[str, Any]


def explain_flow(ctx: CheckContext, flow_doc: ParsedDocument, step: str | None = None) -> Report:
    flow = flow_doc.model
    rules = policy_rules(ctx)
    sites = call_sites(ctx, flow_doc)
    by_step: dict[str | None, list[CallSite]] = {}
    for site in sites:
        by_step.setdefault(site.step_id, []).append(site)
    steps: list[Report] = []
    for ref in iter_steps(flow):
        if step is not None and ref.id != step:
            continue
        entry: Report = {"id": ref.id, "kind": ref.kind}
        if ref.step.name:
            entry["name"] = ref.step.name
        if ref.is_compensation:
            entry["compensates"] = ref.id.removesuffix("_compensate")
        entry.update(_step_rules(ctx, flow_doc, ref.step))
        calls = by_step.get(ref.id, [])
        if calls:
            entry["calls"] = [_call(ctx, rules, site) for site in calls]
        steps.append(entry)
    trigger = _trigger(ctx, flow_doc)
    if by_step.get(None):
        trigger["calls"] = [_call(ctx, rules, site) for site in by_step[None]]
    report: Report = {
        "flow": flow.name,
        "path": flow_doc.path,
        "owner": flow.owner,
        "source": {"system": flow.source.system, "entity": flow.source.entity} if flow.source else None,
        "on_failure": flow.on_failure,
        "trigger": trigger,
        "policies": [_flow_rule(ctx, r, flow_doc) for r in rules if _is_flow_match(r, flow_doc)],
        "steps": steps,
    }
    return report


def _is_flow_match(ref: RuleRef, flow_doc: ParsedDocument) -> bool:
    return not ref.is_call_rule and match_flow(ref.rule.match, flow_doc) is not None


# ------------------------------------------------------------------------------------ trigger


def _trigger(ctx: CheckContext, flow_doc: ParsedDocument) -> Report:
    trigger = flow_doc.model.trigger
    out: Report = {"kind": trigger_name(flow_doc)}
    trigger_type = trigger_type_of(trigger)
    if trigger_type.explain is not None:
        out.update(trigger_type.explain(trigger_spec(trigger)))
    return out


# -------------------------------------------------------------------------------------- steps


def _retry_text(retry: Retry) -> str:
    on = ", ".join(str(x) for x in retry.on)
    return f"{retry.attempts} attempts, {retry.backoff} from {retry.initial} up to {retry.max}, on {on}"


def _step_rules(ctx: CheckContext, flow_doc: ParsedDocument, step: StepBase) -> Report:
    project = ctx.docs.project
    retry, retry_from = effective_retry(ctx, step)
    out: Report = {
        "retry": {"policy": _retry_text(retry) if retry else "no retry: one attempt", "from": retry_from},
        "timeout": (
            {"value": step.timeout, "from": "the step's own `timeout`"}
            if step.timeout
            else {"value": project.defaults.timeout, "from": "the project default (`defaults.timeout`)"}
        ),
    }
    if step.on_error is None:
        on_failure = flow_doc.model.on_failure
        out["on_error"] = {"value": "fail", "from": f"default: the run fails (then `on_failure: {on_failure}`)"}
    elif isinstance(step.on_error, GotoAction):
        out["on_error"] = {"value": f"goto {step.on_error.goto}", "from": "the step's own `on_error`"}
    else:
        out["on_error"] = {"value": step.on_error, "from": "the step's own `on_error`"}
    if step_type_of(step).handler.calls_operation:
        out["idempotency_key"] = (
            {"value": step.idempotency_key, "from": "explicit `idempotency_key`"}
            if step.idempotency_key
            else {"value": None, "from": "default: a stable hash of flow, run and step"}
        )
    if step.if_:
        out["if"] = step.if_
    return out


def _call(ctx: CheckContext, rules: list[RuleRef], site: CallSite) -> Report:
    out: Report = {
        "operation": site.target,
        "system": site.system,
        "connector": site.connector,
        "entity": site.entity,
        "effect": site.effect,
    }
    host = literal_host(site.connection)
    if host:
        out["host"] = host
    config = site.connection.model.config
    timeout = getattr(config, "timeout", None)
    if timeout is not None:
        out["connection_timeout"] = f"{timeout:g}s" if isinstance(timeout, float) else str(timeout)
    if site.writes:
        out["writes"] = {
            "fields": sorted(site.fields) if site.fields is not None else None,
            "found": site.body_from,
        }
        out["ownership"] = _ownership(ctx, site)
    out["policies"] = [_site_rule(ctx, ref, site, why) for ref in rules for why in [_why(ref, site)] if why is not None]
    return out


def _why(ref: RuleRef, site: CallSite) -> list[str] | None:
    """Why a rule applies to a call; a flow rule shows here only when it asks something of calls."""
    if ref.is_call_rule:
        return match_site(ref.rule.match, site)
    asks_calls = ref.rule.forbid is not None or (
        ref.rule.require is not None
        and any(getattr(ref.rule.require, k) for k in ("idempotency_key", "retry", "timeout"))
    )
    return match_flow(ref.rule.match, site.flow) if asks_calls else None


def _ownership(ctx: CheckContext, site: CallSite) -> Report:
    index = ownership_index(ctx)
    if site.entity is None:
        return {"verdict": "unchecked: the operation names no entity"}
    owned = index.get(site.entity)
    if owned is None:
        return {"verdict": f"unchecked: no Ownership declares {site.entity!r}"}
    source = site.flow.model.source
    if source is None:
        return {"verdict": "unchecked: the flow declares no `source`", "owner": owned.spec.owner}
    decisions = decide(owned, site.system, source.system, site.fields)
    allowed = all(d.allowed for d in decisions)
    return {
        "verdict": "allowed" if allowed else "violation",
        "writer": source.system,
        "target": site.system,
        "decisions": [d.as_dict() for d in decisions],
    }


# ----------------------------------------------------------------------------------- policies


def _site_rule(ctx: CheckContext, ref: RuleRef, site: CallSite, why: list[str]) -> Report:
    out = _rule_head(ref, why)
    findings = site_findings(ctx, ref, site)
    if findings:
        out["requires"] = [
            {"requirement": f.requirement, "met": f.problem is None, "problem": f.problem} for f in findings
        ]
    problems = forbid_problems(ref, site)
    if ref.rule.forbid is not None:
        out["forbids"] = {
            "connectors": ref.rule.forbid.connectors,
            "hosts": ref.rule.forbid.hosts,
            "violations": problems,
        }
    out["does"] = _does(ref)
    return out


def _flow_rule(ctx: CheckContext, ref: RuleRef, flow_doc: ParsedDocument) -> Report:
    out = _rule_head(ref, match_flow(ref.rule.match, flow_doc) or ["every flow"])
    findings = flow_findings(ctx, ref, flow_doc)
    if findings:
        out["requires"] = [
            {"requirement": f.requirement, "met": f.problem is None, "problem": f.problem} for f in findings
        ]
    out["does"] = _does(ref)
    return out


def _rule_head(ref: RuleRef, why: list[str]) -> Report:
    out: Report = {
        "rule": ref.id,
        "policy": ref.policy.name,
        "because": why or ["the rule matches everything"],
        "severity": ref.rule.severity,
    }
    if ref.rule.description:
        out["description"] = ref.rule.description
    return out


def _does(ref: RuleRef) -> list[str]:
    rule = ref.rule
    does: list[str] = []
    if rule.action == "hold":
        who = f" by {rule.approvers}" if rule.approvers else ""
        does.append(f"hold for approval{who} when {rule.when}")
    elif rule.action == "deny":
        does.append(f"deny when {rule.when}" if rule.when else "deny")
    if rule.window is not None:
        what = "writes wait in order and go out when it ends" if rule.action == "buffer" else "window"
        does.append(
            f"maintenance window cron {rule.window.cron} for {rule.window.duration} ({rule.window.timezone}): {what}"
        )
    if rule.mask:
        does.append("mask " + ", ".join(rule.mask) + " in logs, API responses, dead letters and traces")
    if rule.rate_limit is not None:
        does.append(f"rate limit {rule.rate_limit.per_second:g}/s (burst {rule.rate_limit.burst}) shared by all flows")
    if rule.concurrency is not None:
        does.append(f"at most {rule.concurrency} calls in flight, shared by all flows")
    if rule.circuit_breaker is not None:
        breaker = rule.circuit_breaker
        does.append(f"circuit breaker: opens after {breaker.failures} failures, probes after {breaker.reset_after}")
    if rule.allow_hosts is not None:
        does.append("egress only to " + ", ".join(rule.allow_hosts))
    return does
