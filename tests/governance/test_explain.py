"""`syncline explain FLOW [--step ID]`: effective retry, timeout, on_error, idempotency, ownership and
policies per step, and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime.compiler import check_project
from runtime.compiler.explain import explain_flow
from tests.governance.conftest import ERP, OWNERSHIP, ROOT, Project, flow


def syncline(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def explain_json(*args: str) -> dict[str, Any]:
    done = syncline("explain", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def step(report: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in report["steps"] if s["id"] == step_id)


def test_order_flow_steps_show_their_effective_rules() -> None:
    report = explain_json("webshop-order-to-erp")
    assert report["trigger"]["auth"].startswith("hmac_sha256")
    assert report["trigger"]["idempotency_key"] == "{{ input.id }}"
    assert [p["rule"] for p in report["policies"]] == ["webhooks-authenticated"]
    assert all(r["met"] for r in report["policies"][0]["requires"])

    post = step(report, "post")
    assert post["retry"]["from"] == "the step's own `retry`" and post["retry"]["policy"].startswith("6 attempts")
    assert post["timeout"] == {"value": "15s", "from": "the step's own `timeout`"}
    assert post["idempotency_key"]["value"] == "order-{{ input.id }}"
    (call,) = post["calls"]
    assert call["ownership"]["verdict"] == "allowed" and call["ownership"]["writer"] == "webshop"
    assert "declared requester" in call["ownership"]["decisions"][0]["reason"]
    rules = {p["rule"]: p for p in call["policies"]}
    assert set(rules) >= {"erp-writes-idempotent", "big-orders-need-approval", "erp-maintenance", "http-egress"}
    assert rules["erp-writes-idempotent"]["because"] == ["system erp", "effect create"]
    assert any("hold for approval by finance-ops" in d for d in rules["big-orders-need-approval"]["does"])
    assert any("buffer" in d or "wait in order" in d for d in rules["erp-maintenance"]["does"])

    customer = step(report, "customer")
    assert "project default" in customer["retry"]["from"]
    assert customer["idempotency_key"]["from"].startswith("default")
    assert "mask-pii" in {p["rule"] for p in customer["calls"][0]["policies"]}
    assert step(report, "post_compensate")["compensates"] == "post"


def test_step_filter_and_text_output() -> None:
    report = explain_json("customer-erp-to-crm", "--step", "update")
    assert [s["id"] for s in report["steps"]] == ["update"]
    decisions = report["steps"][0]["calls"][0]["ownership"]["decisions"]
    assert decisions == [
        {
            "fields": ["credit_status", "payment_terms"],
            "owner": "erp",
            "allowed": True,
            "reason": "propagation of the owner's (erp) data to crm",
        }
    ]
    text = syncline("explain", "flows/customer-crm-to-erp.yaml")
    assert text.returncode == 0
    assert "ownership: allowed (writer crm → erp)" in text.stdout
    assert "requires idempotency_key: met" in text.stdout and "webhooks-authenticated" in text.stdout


def test_unknown_flow_or_step_is_a_usage_error() -> None:
    missing = syncline("explain", "no-such-flow")
    assert missing.returncode == 2 and "customer-crm-to-erp" in missing.stderr
    bad_step = syncline("explain", "webshop-order-to-erp", "--step", "nope")
    assert bad_step.returncode == 2 and "steps: customer" in bad_step.stderr


def test_violations_and_unmet_requirements_are_explained(project: Project) -> None:
    policy = (
        "kind: Policy\nname: p\nrules:\n"
        "  - {id: keys, match: {system: erp, effect: upsert}, require: {idempotency_key: true}, severity: warning}\n"
        "  - {id: limit, match: {system: erp}, rate_limit: {per_second: 5, burst: 10}, concurrency: 2}\n"
    )
    steps = "- id: push\n  call: erp.upsert_customer\n  with: {body: {email: x}}\n"
    path = project(
        {
            "systems/erp.yaml": ERP,
            "governance/o.yaml": OWNERSHIP,
            "governance/p.yaml": policy,
            "flows/f.yaml": flow("shop", "webshop/customer", steps),
        }
    )
    result = check_project(path)
    assert result.context is not None
    report = explain_flow(result.context, result.context.named("Flow")["shop"])
    (call,) = step(report, "push")["calls"]
    assert call["writes"]["fields"] == ["email"]
    assert call["ownership"]["verdict"] == "violation"
    assert call["ownership"]["decisions"][0]["allowed"] is False
    rules = {p["rule"]: p for p in call["policies"]}
    assert rules["keys"]["requires"][0]["met"] is False and rules["keys"]["severity"] == "warning"
    assert rules["limit"]["does"] == [
        "rate limit 5/s (burst 10) shared by all flows",
        "at most 2 calls in flight, shared by all flows",
    ]
