"""`syncline explain FLOW [--step ID] [--project DIR] [--format text|json]`: the effective rules of a
flow and each step (retry, timeout, on_error, idempotency, ownership, policies) and why they apply."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime.compiler import check_project
from runtime.compiler.explain import Report, explain_flow
from runtime.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", help="show the policies, ownership decisions, retries and limits of a flow, and why")
    p.add_argument("flow", metavar="FLOW", help="flow name or file")
    p.add_argument("--step", metavar="ID", help="only this step")
    p.add_argument("--project", default=".", help="project folder (default: .)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.flow)
    result = check_project(target if target.is_file() else Path(args.project))
    if result.context is None:
        raise UsageError("the project did not load")
    flows = result.context.named("Flow")
    doc = flows.get(args.flow)
    if doc is None and target.is_file():
        shown = result.docs.display(target)
        doc = next((d for d in flows.values() if d.path == shown), None)
    if doc is None:
        known = ", ".join(sorted(flows)) or "none"
        raise UsageError(f"no flow {args.flow!r} (flows: {known})")
    report = explain_flow(result.context, doc, args.step)
    if args.step is not None and not report["steps"]:
        from runtime.compiler.walk import iter_steps

        ids = ", ".join(ref.id for ref in iter_steps(doc.model))
        raise UsageError(f"flow {doc.name!r} has no step {args.step!r} (steps: {ids})")
    if result.errors:
        print(
            f"note: the project has {len(result.errors)} validation errors; run `syncline validate`",
            file=sys.stderr,
        )
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        sys.stdout.write(render_text(report))
    return 0


def render_text(report: Report) -> str:
    lines: list[str] = []
    head = f"flow {report['flow']} ({report['path']})"
    facts = []
    if report["owner"]:
        facts.append(f"owner {report['owner']}")
    if report["source"]:
        facts.append(f"source {report['source']['system']}/{report['source']['entity']}")
    facts.append(f"on failure: {report['on_failure']}")
    lines.append(head + " — " + ", ".join(facts))
    trigger = dict(report["trigger"])
    kind = trigger.pop("kind")
    calls = trigger.pop("calls", [])
    lines.append(f"trigger: {kind}")
    for key, value in trigger.items():
        if value is not None:
            lines.append(f"  {key.replace('_', ' ')}: {value}")
    for call in calls:
        lines.extend(_call(call))
    if report["policies"]:
        lines.append("  policies:")
        lines.extend(_policies(report["policies"], "    "))
    for step in report["steps"]:
        lines.append("")
        title = f"step {step['id']} ({step['kind']})"
        if "compensates" in step:
            title += f", compensates {step['compensates']}"
        lines.append(title)
        if "if" in step:
            lines.append(f"  runs if: {step['if']}")
        lines.append(f"  retry: {step['retry']['policy']} — {step['retry']['from']}")
        lines.append(f"  timeout: {step['timeout']['value']} — {step['timeout']['from']}")
        lines.append(f"  on_error: {step['on_error']['value']} — {step['on_error']['from']}")
        if "idempotency_key" in step:
            key = step["idempotency_key"]
            lines.append(f"  idempotency key: {key['value'] or '(default)'} — {key['from']}")
        for call in step.get("calls", []):
            lines.extend(_call(call))
    return "\n".join(lines) + "\n"


def _call(call: dict[str, Any]) -> list[str]:
    lines = [
        f"  call {call['operation']} → system {call['system']} ({call['connector']}), "
        f"entity {call['entity'] or '-'}, effect {call['effect']}"
    ]
    if "connection_timeout" in call:
        lines.append(f"    connection timeout: {call['connection_timeout']}")
    if "writes" in call:
        fields = call["writes"]["fields"]
        shown = ", ".join(fields) if fields is not None else "unknown (counts for the whole entity)"
        lines.append(f"    writes: {shown} — {call['writes']['found']}")
        own = call["ownership"]
        if "decisions" in own:
            lines.append(f"    ownership: {own['verdict']} (writer {own['writer']} → {own['target']})")
            for decision in own["decisions"]:
                what = ", ".join(decision["fields"]) if decision["fields"] is not None else "whole entity"
                mark = "ok" if decision["allowed"] else "VIOLATION"
                lines.append(f"      {what} (owner {decision['owner']}): {mark} — {decision['reason']}")
        else:
            lines.append(f"    ownership: {own['verdict']}")
    if call["policies"]:
        lines.append("    policies:")
        lines.extend(_policies(call["policies"], "      "))
    return lines


def _policies(policies: list[dict[str, Any]], pad: str) -> list[str]:
    lines: list[str] = []
    for rule in policies:
        lines.append(f"{pad}{rule['rule']} ({rule['policy']}) — because {', '.join(rule['because'])}")
        for req in rule.get("requires", []):
            status = "met" if req["met"] else f"NOT MET ({rule['severity']}): {req['problem']}"
            lines.append(f"{pad}  requires {req['requirement']}: {status}")
        forbids = rule.get("forbids")
        if forbids:
            what = ", ".join([*forbids["connectors"], *forbids["hosts"]])
            status = "; ".join(forbids["violations"]) or "respected"
            lines.append(f"{pad}  forbids {what}: {status}")
        for does in rule["does"]:
            lines.append(f"{pad}  {does}")
    return lines
