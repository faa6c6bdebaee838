"""Validate and the runtime decide alike which calls a Policy rule covers (issue 8, item 7): one
matcher for both, with lists and `*` patterns for every `match` key."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.compiler import check_project
from runtime.compiler.callsites import call_sites
from runtime.compiler.policy_static import match_site
from runtime.engine.plan import build_plan
from runtime.policy.match import matches_operation
from runtime.spec.governance import PolicyMatch
from tests.governance.conftest import BILLING, CRM, ERP, Project, codes, flow

ORDERS = flow(
    "orders",
    None,
    """
    - call: erp.create_sales_order
      with: {body: "{{ input }}"}
    - call: erp.find_customer
    """,
    trigger="{webhook: {path: /hooks/orders}}",
).replace("kind: Flow\n", "kind: Flow\nlabels: {team: sales, tier: gold}\n")
CUSTOMERS = flow(
    "customers",
    None,
    """
    - call: crm.update_account
      with: {body: "{{ input }}"}
    - call: billing.update_customer
      with: {body: "{{ input }}"}
    """,
).replace("kind: Flow\n", "kind: Flow\nlabels: {team: finance}\n")

ALL = {
    ("orders", "erp.create_sales_order"),
    ("orders", "erp.find_customer"),
    ("customers", "crm.update_account"),
    ("customers", "billing.update_customer"),
}
ORDERS_CALLS = {c for c in ALL if c[0] == "orders"}
CASES: list[tuple[dict[str, Any], set[tuple[str, str]]]] = [
    ({"system": "erp"}, ORDERS_CALLS),
    ({"system": "er*"}, ORDERS_CALLS),
    ({"system": ["crm", "bill*"]}, ALL - ORDERS_CALLS),
    ({"system": "ERP"}, set()),  # case-sensitive
    ({"connector": "ht?p"}, ALL),
    ({"connector": ["sql", "file*"]}, set()),
    ({"operation": "erp.*"}, ORDERS_CALLS),
    ({"operation": ["crm.update_account", "nothing.*"]}, {("customers", "crm.update_account")}),
    ({"entity": "cust*"}, ALL - {("orders", "erp.create_sales_order")}),
    ({"entity": ["order"]}, {("orders", "erp.create_sales_order")}),
    ({"effect": ["create", "update"]}, ALL - {("orders", "erp.find_customer")}),
    ({"effect": "read"}, {("orders", "erp.find_customer")}),
    ({"flow": "ord*"}, ORDERS_CALLS),
    ({"flow": ["customers", "x"]}, ALL - ORDERS_CALLS),
    ({"trigger": "webhook"}, ORDERS_CALLS),
    ({"trigger": "manual"}, ALL - ORDERS_CALLS),
    ({"label": {"team": "sal*"}}, ORDERS_CALLS),
    ({"label": {"team": "finance", "tier": "*"}}, set()),  # a label the flow lacks matches no pattern
    ({"label": {"tier": "gold"}, "system": "er*", "effect": "read"}, {("orders", "erp.find_customer")}),
]


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.governance.conftest import write_project

    root = write_project(
        tmp_path_factory.mktemp("match"),
        {
            "systems/erp.yaml": ERP,
            "systems/crm.yaml": CRM,
            "systems/billing.yaml": BILLING,
            "flows/orders.yaml": ORDERS,
            "flows/customers.yaml": CUSTOMERS,
        },
    )
    result = check_project(root)
    assert not result.errors, [d.text() for d in result.errors]
    assert result.context is not None
    sites = [site for doc in result.context.named("Flow").values() for site in call_sites(result.context, doc)]
    plan = build_plan(result)

    def static(match: PolicyMatch) -> set[tuple[str, str]]:
        return {(s.flow.name, s.target) for s in sites if match_site(match, s) is not None}

    def runtime(match: PolicyMatch) -> set[tuple[str, str]]:
        return {
            (s.flow.name, s.target)
            for s in sites
            if matches_operation(match, plan.flows[s.flow.name], plan.operation(s.target))
        }

    assert {(s.flow.name, s.target) for s in sites} == ALL
    return static, runtime


@pytest.mark.parametrize(("match", "expected"), CASES, ids=[str(m) for m, _ in CASES])
def test_validate_and_runtime_match_the_same_calls(
    decisions: Any, match: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    static, runtime = decisions
    rule = PolicyMatch.model_validate(match)
    assert static(rule) == expected
    assert runtime(rule) == expected


def test_a_pattern_rule_is_checked_by_validate(project: Project) -> None:
    """`system: "er*"` covers the ERP's calls: its `require:` is checked (SL110), no SL112 warning."""
    rule = "kind: Policy\nname: p\nrules:\n  - {id: erp-timeouts, match: {system: 'er*'}, require: {timeout: true}}\n"
    path = project({"systems/erp.yaml": ERP, "governance/p.yaml": rule, "flows/orders.yaml": ORDERS})
    assert codes(path, "SL112") == []
    found = codes(path, "SL110")
    assert len(found) == 2 and all("'erp-timeouts'" in d.message for d in found)


def test_a_pattern_that_matches_nothing_still_warns(project: Project) -> None:
    rule = "kind: Policy\nname: p\nrules:\n  - {id: nothing, match: {system: 'sap*'}, require: {timeout: true}}\n"
    path = project({"systems/erp.yaml": ERP, "governance/p.yaml": rule, "flows/orders.yaml": ORDERS})
    (diag,) = codes(path, "SL112")
    assert "'nothing'" in diag.message and diag.hint is not None and "no system 'sap*'" in diag.hint
