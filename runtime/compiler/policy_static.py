"""Static policy rules (`kind: Policy` rules with `require` and `forbid`), checked by `syncline validate`.

Which flows and calls a rule covers is decided by `runtime/policy/rule_match.py`, the matcher the
runtime uses too (lists and `*` patterns alike). A rule's `match` keys split in two: `system`,
`connector`, `operation`, `entity` and `effect` select calls (a *call rule*); `flow`, `trigger` and
`label` select flows. A rule with call keys applies to the matching calls of matching flows; a rule
with flow keys only applies to matching flows: to their
trigger and to each of their call steps.

What `require` asks of
- a call: `idempotency_key` an explicit key on each write; `retry` an effective retry policy (the
  step's own or the project default) with more than one attempt; `timeout` an explicit step timeout;
  `auth` credentials on the connection (`config.auth`); `schema` a write body produced by a Mapping
  with an `output_schema`; `owner` an owning team on the flow;
- a flow: `auth` a webhook that authenticates callers; `schema` a webhook (or manual) input schema;
  `idempotency_key` a webhook or queue delivery key and an explicit key on every write;
  `retry`/`timeout` as for each of its call steps; `owner` an owning team.

`forbid.connectors` refuses calls through those connector types; `forbid.hosts` refuses connections
whose literal `base_url` host matches a pattern (templated URLs are checked at run time by egress).
Violations are SL110 (require) and SL111 (forbid) with the rule's severity and id; a rule matching
nothing is SL112.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from runtime.codes import Severity
from runtime.compiler.callsites import CallSite, call_sites, mapping_of_step, step_output_ref
from runtime.compiler.context import CheckContext
from runtime.compiler.references import did_you_mean
from runtime.compiler.walk import iter_steps
from runtime.errors import Diagnostic
from runtime.policy.rule_match import (
    CallFacts,
    flow_facts,
    is_call_rule,
    match_call,
    match_flow_keys,
    pattern_matches,
    patterns,
)
from runtime.policy.rule_match import trigger_name as match_trigger_name
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import ManualTrigger, Retry, StepBase, WebhookTrigger
from runtime.spec.governance import PolicyMatch, PolicyRule
from runtime.spec.yamlload import Loc
from runtime.step_registry import step_type_of
from runtime.trigger_registry import trigger_spec, trigger_type_of

REQUIREMENTS = ("idempotency_key", "retry", "auth", "schema", "owner", "timeout")


@dataclass(frozen=True)
class RuleRef:
    """One rule of one Policy document, with where it sits."""

    policy: ParsedDocument
    index: int
    rule: PolicyRule

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def loc(self) -> Loc:
        return ("rules", self.index)

    @property
    def is_call_rule(self) -> bool:
        return is_call_rule(self.rule.match)


@dataclass(frozen=True)
class Finding:
    """One requirement of a rule, checked against one call or flow: `problem` is None when met."""

    rule: RuleRef
    requirement: str
    flow: ParsedDocument
    loc: Loc
    subject: str
    problem: str | None
    key: bool = False  # point at the key (something is missing under it) rather than the value


def policy_rules(ctx: CheckContext) -> list[RuleRef]:
    return [RuleRef(doc, i, rule) for doc in ctx.named("Policy").values() for i, rule in enumerate(doc.model.rules)]


def trigger_name(flow_doc: ParsedDocument) -> str:
    return match_trigger_name(flow_doc.model)


def match_flow(match: PolicyMatch, flow_doc: ParsedDocument) -> list[str] | None:
    """Why the flow matches (the keys that matched), or None when it does not (the runtime's matcher)."""
    return match_flow_keys(match, flow_facts(flow_doc.model, flow_doc.name))


def match_site(match: PolicyMatch, site: CallSite) -> list[str] | None:
    """Why the rule covers this call, or None (the runtime's matcher, `runtime/policy/rule_match.py`)."""
    call = CallFacts(site.system, site.connector, site.target, site.entity, site.effect)
    return match_call(match, flow_facts(site.flow.model, site.flow.name), call)


# ------------------------------------------------------------------------------- requirements


def effective_retry(ctx: CheckContext, step: StepBase | None) -> tuple[Retry | None, str]:
    """The retry policy a step runs with, and where it comes from."""
    if step is None:
        return None, "not a step"
    if step.retry is not None:
        return step.retry, "the step's own `retry`"
    calls_operation = step_type_of(step).handler.calls_operation
    if calls_operation and ctx.docs.project.defaults.retry is not None:
        return ctx.docs.project.defaults.retry, "the project default (`defaults.retry` in syncline.yaml)"
    if calls_operation:
        return None, "none: the step has no `retry` and the project sets no `defaults.retry`"
    return None, "none: the step has no `retry` (the project default applies to calls only)"


def _site_checks(ctx: CheckContext, requirement: str, site: CallSite) -> str | bool | None:
    """A problem text, None when met, or False when the requirement does not apply to this call."""
    step = site.step
    is_step = (
        site.origin in ("step", "compensation") and step is not None and step_type_of(step).handler.calls_operation
    )
    where = f"step {site.step_id!r} ({site.target})"
    if requirement == "idempotency_key":
        if not site.writes or not is_step:
            return False
        assert step is not None
        return None if step.idempotency_key else f"{where} writes without an explicit `idempotency_key`"
    if requirement == "retry":
        if not is_step:
            return False
        retry, _ = effective_retry(ctx, step)
        if retry is None:
            return f"{where} has no retry policy (neither `retry` nor a project default)"
        return None if retry.attempts > 1 else f"{where} retries only once (`attempts: {retry.attempts}`)"
    if requirement == "timeout":
        if not is_step:
            return False
        assert step is not None
        return None if step.timeout else f"{where} declares no `timeout`"
    if requirement == "auth":
        config = site.connection.model.config
        if not hasattr(config, "auth"):
            return False
        return None if config.auth is not None else f"connection {site.connection.name!r} sends no credentials"
    if requirement == "schema":
        if not site.writes or not is_step:
            return False
        return None if _body_has_schema(ctx, site) else f"{where} writes a body no `output_schema` checks"
    if requirement == "owner":
        return None if site.flow.model.owner else f"flow {site.flow_name!r} names no owning team (`owner`)"
    return False


def _body_has_schema(ctx: CheckContext, site: CallSite) -> bool:
    refs = {ref.id: ref for ref in iter_steps(site.flow.model)}
    for value in (site.params or {}).values():
        source = step_output_ref(value)
        if source is not None:
            mapping = mapping_of_step(ctx, refs.get(source))
            if mapping is not None and mapping.model.output_schema:
                return True
    return False


def _flow_checks(ctx: CheckContext, requirement: str, flow_doc: ParsedDocument) -> tuple[Loc, str | None] | None:
    """(location, problem or None) for a flow-level requirement, or None when it does not apply."""
    flow = flow_doc.model
    trigger = flow.trigger
    webhook: Loc = ("trigger", "webhook")
    if requirement == "auth":
        if not isinstance(trigger, WebhookTrigger):
            return None
        auth = trigger.webhook.auth
        if auth is None:
            return webhook, f"webhook {trigger.webhook.path} declares no `auth`: anyone may call it"
        ok = auth.type != "none"
        return (*webhook, "auth"), None if ok else f"webhook {trigger.webhook.path} does not authenticate callers"
    if requirement == "schema":
        if isinstance(trigger, WebhookTrigger):
            ok = bool(trigger.webhook.schema_)
            return webhook, None if ok else f"webhook {trigger.webhook.path} declares no `schema`"
        if isinstance(trigger, ManualTrigger):
            ok = bool(trigger.manual.input_schema)
            return ("trigger", "manual"), None if ok else "manual trigger declares no `input_schema`"
        return None
    if requirement == "idempotency_key":
        if isinstance(trigger, WebhookTrigger):
            ok = bool(trigger.webhook.idempotency_key)
            return webhook, None if ok else f"webhook {trigger.webhook.path} has no `idempotency_key`"
        kind = trigger_type_of(trigger)
        if kind.idempotency_field:
            ok = bool(kind.field_value(trigger_spec(trigger), kind.idempotency_field))
            problem = f"{kind.key} trigger has no `{kind.idempotency_field}`"
            return ("trigger", kind.key), None if ok else problem
        return None
    if requirement == "owner":
        return ("name",), None if flow.owner else f"flow {flow_doc.name!r} names no owning team (`owner`)"
    return None


def requested(rule: PolicyRule) -> list[str]:
    """The requirements a rule asks for (those set to true)."""
    if rule.require is None:
        return []
    return [key for key in REQUIREMENTS if getattr(rule.require, key if key != "schema" else "schema_") is True]


def site_findings(ctx: CheckContext, ref: RuleRef, site: CallSite) -> list[Finding]:
    """Each requirement of a call rule (or of a flow rule, for the flow's call steps) on one call."""
    findings: list[Finding] = []
    for requirement in requested(ref.rule):
        if not ref.is_call_rule and requirement in ("auth", "schema", "owner"):
            continue  # a flow rule asks these of the flow (trigger), see flow_findings
        if not ref.is_call_rule and site.origin not in ("step", "compensation"):
            continue
        result = _site_checks(ctx, requirement, site)
        if result is False:
            continue
        problem = result if isinstance(result, str) else None
        findings.append(Finding(ref, requirement, site.flow, site.loc, f"step {site.step_id}", problem))
    return findings


def flow_findings(ctx: CheckContext, ref: RuleRef, flow_doc: ParsedDocument) -> list[Finding]:
    """The flow-level requirements of a flow rule."""
    findings: list[Finding] = []
    for requirement in requested(ref.rule):
        result = _flow_checks(ctx, requirement, flow_doc)
        if result is not None:
            loc, problem = result
            key = loc[:1] == ("trigger",)
            findings.append(Finding(ref, requirement, flow_doc, loc, f"flow {flow_doc.name}", problem, key))
    return findings


# ------------------------------------------------------------------------------------ forbid


def forbid_problems(ref: RuleRef, site: CallSite) -> list[str]:
    forbid = ref.rule.forbid
    if forbid is None:
        return []
    problems: list[str] = []
    if site.connector in forbid.connectors:
        problems.append(f"step {site.step_id!r} calls {site.target} through the forbidden connector {site.connector!r}")
    host = literal_host(site.connection)
    if host is not None:
        for pattern in forbid.hosts:
            if fnmatch.fnmatch(host, pattern.lower()):
                problems.append(
                    f"step {site.step_id!r} calls {site.target} on host {host}, forbidden by {pattern!r} "
                    f"(connection {site.connection.name!r})"
                )
    return problems


def literal_host(connection: ParsedDocument) -> str | None:
    base_url = getattr(connection.model.config, "base_url", None)
    if not isinstance(base_url, str) or "{{" in base_url or "{%" in base_url:
        return None
    host = urlsplit(base_url).hostname
    return host.lower() if host else None


# ------------------------------------------------------------------------------------- checks


def matching_sites(ctx: CheckContext, ref: RuleRef, sites: list[CallSite]) -> Iterator[tuple[CallSite, list[str]]]:
    for site in sites:
        if ref.is_call_rule:
            why = match_site(ref.rule.match, site)
        else:
            why = match_flow(ref.rule.match, site.flow)
        if why is not None:
            yield site, why


def check_policies(ctx: CheckContext) -> None:
    rules = policy_rules(ctx)
    if not rules:
        return
    flows = list(ctx.named("Flow").values())
    sites = [site for doc in flows for site in call_sites(ctx, doc)]
    for ref in rules:
        matched = False
        for site, _ in matching_sites(ctx, ref, sites):
            matched = True
            for finding in site_findings(ctx, ref, site):
                _report(ctx, ref, finding.flow, finding.loc, "SL110", finding.problem)
            for problem in forbid_problems(ref, site):
                _report(ctx, ref, site.flow, site.loc, "SL111", problem)
        if not ref.is_call_rule:
            for flow_doc in flows:
                if match_flow(ref.rule.match, flow_doc) is None:
                    continue
                matched = True
                for finding in flow_findings(ctx, ref, flow_doc):
                    _report(ctx, ref, flow_doc, finding.loc, "SL110", finding.problem, key=finding.key)
                _forbid_trigger_connection(ctx, ref, flow_doc)
        if not matched and flows:
            _report_unmatched(ctx, ref, sites)


def _forbid_trigger_connection(ctx: CheckContext, ref: RuleRef, flow_doc: ParsedDocument) -> None:
    forbid = ref.rule.forbid
    trigger = flow_doc.model.trigger
    if forbid is None or not forbid.connectors:
        return
    kind = trigger_type_of(trigger)
    name = kind.field_value(trigger_spec(trigger), kind.connection_field)
    if name:
        key = kind.key
        connection = ctx.named("Connection").get(name)
        if connection is not None and str(connection.model.type) in forbid.connectors:
            _report(
                ctx,
                ref,
                flow_doc,
                ("trigger", key, kind.connection_field or "connection"),
                "SL111",
                f"the {key} trigger reads connection {name!r} through the forbidden connector "
                f"{connection.model.type!r}",
            )


def _report(
    ctx: CheckContext,
    ref: RuleRef,
    doc: ParsedDocument,
    loc: Loc,
    code: str,
    problem: str | None,
    *,
    key: bool = False,
) -> None:
    if problem is None:
        return
    severity: Severity = ref.rule.severity
    line, col = doc.pos(loc, key=key)
    ctx.diagnostics.append(
        Diagnostic(
            doc.path,
            line,
            col,
            code,
            f"policy rule {ref.id!r} of {ref.policy.name!r}: {problem}",
            severity,
            ref.rule.description,
        )
    )


def _report_unmatched(ctx: CheckContext, ref: RuleRef, sites: list[CallSite]) -> None:
    match = ref.rule.match
    known: dict[str, set[str]] = {
        "system": {s.system for s in sites},
        "connector": {s.connector for s in sites},
        "operation": {s.target for s in sites},
        "entity": {s.entity for s in sites if s.entity},
        "effect": {s.effect for s in sites},
        "flow": set(ctx.named("Flow")),
    }
    hint: str | None = None
    for key, options in known.items():
        for value in patterns(getattr(match, key)) or []:
            if not any(pattern_matches(value, option) for option in options):
                suggestion = did_you_mean(value, options)
                hint = f"no {key} {value!r}" + (f" — {suggestion}" if suggestion else "")
                break
        if hint:
            break
    ctx.report(
        ref.policy,
        "SL112",
        f"policy rule {ref.id!r} matches no flow or call of this project",
        (*ref.loc, "match"),
        hint=hint,
    )
