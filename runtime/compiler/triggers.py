"""Checks of triggers across flows: the paths of trigger kinds taking HTTP requests (`webhook`, and any
kind declaring `http`: format, the service's reserved prefixes, two flows on one method and path),
webhook auth headers, cron strings and timezones, event triggers that no flow feeds, and the literal
headers of the `respond` answers sync webhook callers get."""

from __future__ import annotations

import re

from runtime.compiler.context import CheckContext
from runtime.compiler.step_checks import check_step_findings
from runtime.compiler.walk import iter_steps
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import EventTrigger, ScheduleTrigger, WebhookSpec, WebhookTrigger
from runtime.spec.governance import Policy
from runtime.step_registry import step_type_of
from runtime.trigger_registry import trigger_spec, trigger_type_of
from runtime.triggers.cron import ScheduleError, cron_trigger, zone

_PATH_RE = re.compile(r"^/[A-Za-z0-9_\-./{}]*$")
_PARAM_RE = re.compile(r"\{[^/]*\}")
RESERVED_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/console")


def http_path_problem(path: str) -> str | None:
    """Why the node could not take requests at `path` of a kind declaring `http` (SL044), or None."""
    if not _PATH_RE.match(path) or "//" in path or "/../" in path + "/":
        return "is not a valid path"
    if path.startswith(RESERVED_PREFIXES):
        return "is reserved for the service itself"
    return None


def _shape(path: str) -> str:
    """Path with `{param}` segments made anonymous, so /a/{x} and /a/{y} collide."""
    return _PARAM_RE.sub("{}", path.rstrip("/") or "/")


def check_triggers(ctx: CheckContext) -> None:
    seen: dict[tuple[str, str], tuple[ParsedDocument, str]] = {}
    for doc in ctx.named("Flow").values():
        trigger = doc.model.trigger
        kind = trigger_type_of(trigger)
        if kind.http is not None:
            spec = trigger_spec(trigger)
            loc = ("trigger", kind.key, "path") if "path" in type(spec).model_fields else ("trigger", kind.key)
            try:
                intake = kind.http(spec)  # cheap by contract: it names its method and path
                method, path = str(intake.method).upper(), str(intake.path)
            except Exception as exc:  # a plugin's intake that cannot be built would fail the node's start
                ctx.report(doc, "SL044", f"the {kind.key} trigger cannot take requests: {exc}", loc)
                continue
            wrong = http_path_problem(path)
            if wrong is not None:
                ctx.report(doc, "SL044", f"{kind.key} path {path!r} {wrong}", loc)
                continue
            if isinstance(trigger, WebhookTrigger):
                _check_webhook_auth_headers(ctx, doc, trigger.webhook)
            key = (method, _shape(path))
            other = seen.get(key)
            if other is not None:
                ctx.report(doc, "SL040", f"{method} {path} is also the {other[1]} of flow {other[0].name!r}", loc)
            else:
                seen[key] = (doc, kind.key)
        elif isinstance(trigger, ScheduleTrigger):
            spec_s = trigger.schedule
            try:
                zone(spec_s.timezone)
            except ScheduleError as exc:
                ctx.report(doc, "SL042", str(exc), ("trigger", "schedule", "timezone"))
                continue
            if spec_s.cron is not None:
                try:
                    cron_trigger(spec_s.cron, spec_s.timezone)
                except ScheduleError as exc:
                    ctx.report(doc, "SL041", str(exc), ("trigger", "schedule", "cron"))
    _check_policy_windows(ctx)
    _check_event_triggers(ctx)
    check_step_findings(ctx)  # e.g. `respond` headers HTTP cannot carry (SL045)


def _check_webhook_auth_headers(ctx: CheckContext, doc: ParsedDocument, spec: WebhookSpec) -> None:
    """The signature and the signed timestamp need headers of their own (SL046): with one header for
    both, every delivery would fail verification."""
    auth = spec.auth
    if auth is None or auth.timestamp_header is None:
        return
    if auth.timestamp_header.strip().lower() == auth.header.strip().lower():
        ctx.report(
            doc,
            "SL046",
            f"webhook auth reads the signature and the timestamp from the same header {auth.header!r}",
            ("trigger", "webhook", "auth", "timestamp_header"),
            hint="give the timestamp its own header (e.g. X-Timestamp); a combined header such as "
            "Stripe-Signature (t=…,v1=…) is `type: signature_header` (or `type: stripe`)",
        )


def _check_policy_windows(ctx: CheckContext) -> None:
    for doc in ctx.named("Policy").values():
        policy: Policy = doc.model
        for index, rule in enumerate(policy.rules):
            if rule.window is None:
                continue
            loc = ("rules", index, "window")
            try:
                cron_trigger(rule.window.cron, rule.window.timezone)
            except ScheduleError as exc:
                code = "SL042" if "timezone" in str(exc) else "SL041"
                ctx.report(doc, code, str(exc), (*loc, "cron" if code == "SL041" else "timezone"))


def _check_event_triggers(ctx: CheckContext) -> None:
    if ctx.broken("Flow"):
        return  # the flow that emits the event may be the one already reported as invalid
    emitted: set[str] = set()
    for doc in ctx.named("Flow").values():
        for ref in iter_steps(doc.model):
            for reference in step_type_of(ref.step).handler.references(ref.step):
                if reference.kind == "event":
                    emitted.add(reference.name)
    for doc in ctx.named("Flow").values():
        trigger = doc.model.trigger
        if isinstance(trigger, EventTrigger) and trigger.event.name not in emitted:
            ctx.report(doc, "SL043", f"no flow emits event {trigger.event.name!r}", ("trigger", "event", "name"))
