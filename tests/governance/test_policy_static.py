"""Static policy rules: `require` (SL110) and `forbid` (SL111) with the rule's severity and id, and
rules that match nothing (SL112)."""

from __future__ import annotations

from runtime.compiler import check_project
from tests.governance.conftest import ERP, ROOT, Project, codes, flow

POLICY_CODES = ("SL110", "SL111", "SL112")


def policy(*rules: str) -> str:
    return "kind: Policy\nname: controls\nrules:\n" + "".join(f"  - {rule}\n" for rule in rules)


WRITE = """
- id: post
  call: erp.create_sales_order
  with: {body: "{{ input }}"}
"""
WRITE_GUARDED = """
- id: post
  call: erp.create_sales_order
  with: {body: "{{ input }}"}
  idempotency_key: "o-{{ input.id }}"
  retry: {attempts: 5}
  timeout: 10s
"""


def test_bundled_project_satisfies_its_policies() -> None:
    result = check_project(ROOT)
    assert [d for d in result.diagnostics if d.code in POLICY_CODES] == []
    assert result.context is not None
    ids = {rule.id for doc in result.context.named("Policy").values() for rule in doc.model.rules}
    assert {"erp-writes-idempotent", "webhooks-authenticated", "big-orders-need-approval"} <= ids


def test_call_rule_requires_idempotency_key_retry_and_timeout(project: Project) -> None:
    rule = (
        "{id: erp-writes, match: {system: erp, effect: [create, upsert]},"
        " require: {idempotency_key: true, retry: true, timeout: true}}"
    )
    bad = project(
        {"systems/erp.yaml": ERP, "governance/p.yaml": policy(rule), "flows/f.yaml": flow("f", None, WRITE)}, "bad"
    )
    found = codes(bad, "SL110")
    assert len(found) == 3 and {d.line for d in found} == {6}
    text = " ".join(d.message for d in found)
    assert "'erp-writes'" in text and "idempotency_key" in text and "no retry policy" in text and "timeout" in text
    good = project(
        {"systems/erp.yaml": ERP, "governance/p.yaml": policy(rule), "flows/f.yaml": flow("f", None, WRITE_GUARDED)},
        "good",
    )
    assert codes(good, *POLICY_CODES) == []


def test_project_default_retry_counts_and_one_attempt_does_not(project: Project) -> None:
    rule = "{id: retried, match: {operation: erp.create_sales_order}, require: {retry: true}}"
    files = {"systems/erp.yaml": ERP, "governance/p.yaml": policy(rule), "flows/f.yaml": flow("f", None, WRITE)}
    defaults = "defaults:\n  retry: {attempts: 3}\n"
    assert codes(project(files, "with-default", project=defaults), "SL110") == []
    once = "defaults:\n  retry: {attempts: 1}\n"
    (diag,) = codes(project(files, "once", project=once), "SL110")
    assert "attempts: 1" in diag.message


def test_idempotency_is_not_asked_of_reads(project: Project) -> None:
    rule = "{id: erp-keys, match: {system: erp}, require: {idempotency_key: true}}"
    read = "- call: erp.find_customer\n"
    path = project({"systems/erp.yaml": ERP, "governance/p.yaml": policy(rule), "flows/f.yaml": flow("f", None, read)})
    assert codes(path, *POLICY_CODES) == []


def test_severity_comes_from_the_rule(project: Project) -> None:
    rule = "{id: soft, match: {system: erp}, require: {timeout: true}, severity: warning}"
    path = project({"systems/erp.yaml": ERP, "governance/p.yaml": policy(rule), "flows/f.yaml": flow("f", None, WRITE)})
    (diag,) = codes(path, "SL110")
    assert diag.severity == "warning" and diag.message.startswith("policy rule 'soft' of 'controls':")


def test_flow_rule_checks_webhook_auth_schema_idempotency_and_owner(project: Project) -> None:
    require = "{auth: true, schema: true, idempotency_key: true, owner: true}"
    rule = "{id: hooks, match: {trigger: webhook}, require: " + require + "}"
    open_hook = flow("open", None, "- set: {a: 1}", trigger="{webhook: {path: /hooks/open}}")
    schedule = flow("tick", None, "- set: {a: 1}", trigger="{schedule: {every: 5m}}")
    path = project({"governance/p.yaml": policy(rule), "flows/open.yaml": open_hook, "flows/tick.yaml": schedule})
    found = codes(path, "SL110")
    assert all(d.path.endswith("open.yaml") for d in found)
    messages = " | ".join(d.message for d in found)
    for part in ("declares no `auth`", "declares no `schema`", "no `idempotency_key`", "names no owning team"):
        assert part in messages, messages
    signed = """
    kind: Flow
    name: signed
    owner: ops
    trigger:
      webhook:
        path: /hooks/signed
        auth: {type: hmac_sha256, secret: "{{ secret('K') }}"}
        schema: schemas/s.json
        idempotency_key: "{{ input.id }}"
    steps: [{set: {a: 1}}]
    """
    ok = project({"governance/p.yaml": policy(rule), "flows/s.yaml": signed, "schemas/s.json": "{}"}, "ok")
    assert codes(ok, *POLICY_CODES) == []


def test_match_by_flow_and_label_applies_call_requirements_to_every_call(project: Project) -> None:
    rule = "{id: critical, match: {label: {criticality: high}}, require: {timeout: true}}"
    labelled = (
        "kind: Flow\nname: hot\nlabels: {criticality: high}\ntrigger: {manual: {}}\n"
        "steps:\n  - call: erp.find_customer\n"
    )
    plain = flow("cold", None, "- call: erp.find_customer")
    path = project(
        {
            "systems/erp.yaml": ERP,
            "governance/p.yaml": policy(rule),
            "flows/hot.yaml": labelled,
            "flows/cold.yaml": plain,
        }
    )
    (diag,) = codes(path, "SL110")
    assert diag.path.endswith("hot.yaml") and diag.line == 6


def test_forbid_connectors_and_literal_hosts(project: Project) -> None:
    internal = ERP.replace("https://erp.example.com", "https://erp.corp.internal:8443/api")
    rules = policy(
        "{id: no-internal, match: {connector: http}, forbid: {hosts: ['*.corp.internal']}}",
        "{id: no-http-for-f, match: {flow: f}, forbid: {connectors: [http]}}",
    )
    path = project({"systems/erp.yaml": internal, "governance/p.yaml": rules, "flows/f.yaml": flow("f", None, WRITE)})
    found = codes(path, "SL111")
    assert len(found) == 2
    text = " | ".join(d.message for d in found)
    assert "erp.corp.internal" in text and "'*.corp.internal'" in text and "forbidden connector 'http'" in text
    templated = ERP.replace("https://erp.example.com", "{{ env('ERP_URL') }}")
    later = project(
        {"systems/erp.yaml": templated, "governance/p.yaml": rules, "flows/g.yaml": flow("g", None, WRITE)}, "t"
    )
    assert codes(later, "SL111") == []  # a templated URL is checked by egress at run time


def test_rule_matching_nothing_is_a_warning_with_a_suggestion(project: Project) -> None:
    rules = policy(
        "{id: typo, match: {system: epr}, require: {retry: true}}",
        "{id: fine, match: {system: erp}, mask: ['$.email']}",
    )
    path = project({"systems/erp.yaml": ERP, "governance/p.yaml": rules, "flows/f.yaml": flow("f", None, WRITE)})
    (diag,) = codes(path, "SL112")
    assert diag.severity == "warning" and "'typo'" in diag.message and diag.hint is not None
    assert "did you mean 'erp'" in diag.hint and diag.line == 4
    # a project without flows (a shared governance repo) does not warn
    bare = project({"governance/p.yaml": rules}, "bare")
    assert codes(bare, "SL112") == []
