"""Ownership checks: who may write which entity fields where (SL100), update cycles (SL101), flows
without a source (SL102), entities owned twice (SL103) and mistyped systems (SL104)."""

from __future__ import annotations

from pathlib import Path

from runtime.compiler import check_project
from runtime.compiler.ownership import OwnedEntity, decide
from runtime.spec.governance import EntityOwnership
from tests.governance.conftest import CRM, ERP, OWNERSHIP, ROOT, Project, codes, flow

GOVERNANCE = ("SL100", "SL101", "SL102", "SL103", "SL104")


def _owned() -> OwnedEntity:
    spec = EntityOwnership(owner="erp", fields={"name": "crm", "email": "crm"}, requesters=["crm"])
    return OwnedEntity("customer", spec, None)  # type: ignore[arg-type]


def test_decide_follows_field_owners_requesters_and_propagation() -> None:
    owned = _owned()
    # crm's own fields go to the erp as propagation; the erp-owned key goes in as a requester's write
    decisions = {d.owner: d for d in decide(owned, "erp", "crm", frozenset({"name", "customer_no"}))}
    assert decisions["crm"].allowed and decisions["crm"].fields == ("name",)
    assert "propagation" in decisions["crm"].reason
    assert decisions["erp"].allowed and "requester" in decisions["erp"].reason
    # the webshop may neither propagate crm fields nor write into the erp
    denied = decide(owned, "erp", "webshop", frozenset({"email", "credit"}))
    assert not any(d.allowed for d in denied)
    # the erp writing crm-owned fields into the crm: not a requester
    (back,) = decide(owned, "crm", "erp", frozenset({"name"}))
    assert not back.allowed and "requesters" in back.reason
    # unknown fields: the entity owner decides
    (whole,) = decide(owned, "billing", "erp", None)
    assert whole.allowed and whole.fields is None


def test_bundled_project_has_no_ownership_findings() -> None:
    result = check_project(ROOT)
    assert [d for d in result.diagnostics if d.code in GOVERNANCE] == []
    assert result.context is not None and result.context.named("Ownership")


def test_violation_names_flow_step_entity_fields_owner_and_writer(project: Project) -> None:
    steps = """
    - id: push
      call: erp.upsert_customer
      with: {body: {name: "{{ input.name }}", email: "{{ input.email }}", credit_status: ok}}
    """
    path = project(
        {
            "systems/erp.yaml": ERP,
            "governance/ownership.yaml": OWNERSHIP,
            "flows/f.yaml": flow("webshop-customers", "webshop/customer", steps),
        }
    )
    (diag,) = codes(path, "SL100")
    assert diag.path.endswith("flows/f.yaml") and diag.line == 7  # the `call:` line
    for word in ("webshop-customers", "'push'", "writer webshop", "customer", "email, name", "crm", "erp"):
        assert word in diag.message, diag.message
    # one diagnostic per step even though two owners' fields are refused
    assert "credit_status owned by erp" in diag.message and "requesters" in diag.message


def test_propagation_from_the_owner_and_requester_writes_are_allowed(project: Project) -> None:
    crm_to_erp = """
    - id: push
      call: erp.upsert_customer
      with: {body: {customer_no: "{{ input.no }}", name: "{{ input.name }}"}}
    """
    erp_to_crm = """
    - id: push
      call: crm.update_account
      with: {body: {credit_status: "{{ input.credit_status }}"}}
    """
    path = project(
        {
            "systems/erp.yaml": ERP,
            "systems/crm.yaml": CRM,
            "governance/ownership.yaml": OWNERSHIP,
            "flows/a.yaml": flow("crm-to-erp", "crm/customer", crm_to_erp),
            "flows/b.yaml": flow("erp-to-crm", "erp/customer", erp_to_crm),
        }
    )
    assert codes(path, *GOVERNANCE) == []


def test_fields_come_from_the_mapping_a_step_maps_with(project: Project) -> None:
    mapping = """
    kind: Mapping
    name: to_crm
    fields: {credit_status: "{{ input.c }}", email: "{{ input.e }}"}
    """
    steps = """
    - id: account
      map: to_crm
    - id: push
      call: crm.update_account
      with: {id: "{{ input.no }}", body: "{{ steps.account.output }}"}
    """
    path = project(
        {
            "systems/crm.yaml": CRM,
            "governance/ownership.yaml": OWNERSHIP,
            "mappings/to_crm.yaml": mapping,
            "flows/f.yaml": flow("erp-to-crm", "erp/customer", steps),
        }
    )
    (diag,) = codes(path, "SL100")
    assert "field email owned by crm" in diag.message and "credit_status" not in diag.message


def test_unknown_fields_count_for_the_whole_entity(project: Project) -> None:
    steps = """
    - call: erp.create_sales_order
      with: {body: "{{ input }}"}
    """
    ok = project(
        {
            "systems/erp.yaml": ERP,
            "governance/ownership.yaml": OWNERSHIP,
            "flows/f.yaml": flow("shop", "webshop/order", steps),
        },
        name="ok",
    )
    assert codes(ok, "SL100") == []
    denied = project(
        {
            "systems/erp.yaml": ERP,
            "governance/ownership.yaml": OWNERSHIP,
            "flows/f.yaml": flow("pos", "pos/order", steps),
        },
        name="denied",
    )
    (diag,) = codes(denied, "SL100")
    assert "entity order (fields unknown)" in diag.message and "pos among order's requesters" in diag.message


def test_update_cycle_is_reported_only_when_a_field_travels_both_ways(project: Project) -> None:
    there = """
    - call: erp.upsert_customer
      with: {body: {customer_no: "{{ input.no }}", name: "{{ input.name }}"}}
    """
    back_disjoint = """
    - call: crm.update_account
      with: {body: {credit_status: "{{ input.credit_status }}"}}
    """
    back_shared = """
    - call: crm.update_account
      with: {body: {customer_no: "{{ input.no }}", credit_status: "{{ input.credit_status }}"}}
    """
    base = {"systems/erp.yaml": ERP, "systems/crm.yaml": CRM, "governance/ownership.yaml": OWNERSHIP}
    broken = project(
        {
            **base,
            "flows/a.yaml": flow("a", "crm/customer", there),
            "flows/b.yaml": flow("b", "erp/customer", back_disjoint),
        },
        name="broken",
    )
    assert codes(broken, "SL101") == []
    looping = project(
        {
            **base,
            "flows/a.yaml": flow("a", "crm/customer", there),
            "flows/b.yaml": flow("b", "erp/customer", back_shared),
        },
        name="looping",
    )
    (diag,) = codes(looping, "SL101")
    assert diag.severity == "warning"
    assert "crm → erp → crm" in diag.message and "customer_no" in diag.message and "flows a, b" in diag.message


def test_three_system_cycle_with_unknown_fields(project: Project) -> None:
    from tests.governance.conftest import BILLING

    ownership = "kind: Ownership\nname: o\nentities: {customer: {owner: erp, requesters: [crm, billing]}}\n"
    files = {
        "systems/erp.yaml": ERP,
        "systems/crm.yaml": CRM,
        "systems/billing.yaml": BILLING,
        "governance/o.yaml": ownership,
        "flows/a.yaml": flow("a", "erp/customer", "- call: crm.update_account\n  with: {body: '{{ input }}'}"),
        "flows/b.yaml": flow("b", "crm/customer", "- call: billing.update_customer\n  with: {body: '{{ input }}'}"),
        "flows/c.yaml": flow("c", "billing/customer", "- call: erp.upsert_customer\n  with: {body: '{{ input }}'}"),
    }
    found = codes(project(files), "SL101")
    assert [d.message.split(":")[1].split("(")[0].strip() for d in found] == ["billing → erp → crm → billing"]


def test_flow_without_source_entity_twice_and_mistyped_system(project: Project) -> None:
    second = "kind: Ownership\nname: other\nentities:\n  invoice: {owner: billing}\n  customer: {owner: crm}\n"
    path = project(
        {
            "systems/erp.yaml": ERP,
            "governance/ownership.yaml": OWNERSHIP,
            "governance/zz_other.yaml": second,
            "flows/f.yaml": flow("anon", None, "- call: erp.upsert_customer\n  with: {body: {name: x}}"),
        }
    )
    found = {d.code: d for d in codes(path, *GOVERNANCE)}
    assert set(found) == {"SL102", "SL103"}, found
    assert found["SL103"].path.endswith("zz_other.yaml") and found["SL103"].line == 5
    assert "Ownership 'master-data'" in found["SL103"].message
    assert found["SL102"].severity == "warning" and "anon" in found["SL102"].message
    # a system close to a known one is a typo; one far from all (sap) may simply not be integrated yet
    typo = project(
        {
            "systems/erp.yaml": ERP,
            "governance/o.yaml": "kind: Ownership\nname: o\nentities: {order: {owner: epr}, x: {owner: sap}}\n",
            "flows/f.yaml": flow("f", "erp/order", "- call: erp.find_customer"),
        },
        name="typo",
    )
    (diag,) = codes(typo, "SL104")
    assert diag.hint == "did you mean 'erp'?" and diag.line == 3


def test_without_ownership_nothing_is_checked(tmp_path: Path, project: Project) -> None:
    path = project({"systems/erp.yaml": ERP, "flows/f.yaml": flow("f", None, "- call: erp.upsert_customer")})
    assert codes(path, *GOVERNANCE) == []


def test_a_requester_may_not_overwrite_the_owners_declared_fields() -> None:
    """Being a requester lets crm ask the erp to change the customer with the fields crm owns and the
    fields no declaration assigns; `credit_status: erp` is the erp's own (issue 8, item 7)."""
    spec = EntityOwnership(
        owner="erp", fields={"name": "crm", "credit_status": "erp", "phone": "billing"}, requesters=["crm"]
    )
    owned = OwnedEntity("customer", spec, None)  # type: ignore[arg-type]
    decisions = decide(owned, "erp", "crm", frozenset({"name", "customer_no", "credit_status", "phone"}))
    verdicts = {d.fields: d.allowed for d in decisions}
    assert verdicts == {("name",): True, ("customer_no",): True, ("credit_status",): False, ("phone",): False}
    (refused,) = [d for d in decisions if d.fields == ("credit_status",)]
    assert refused.owner == "erp" and "declared" in refused.reason and "requester" in refused.reason
    # the owner itself writes its declared fields; a requester with unknown fields might overwrite them
    assert all(d.allowed for d in decide(owned, "erp", "erp", frozenset({"credit_status"})))
    (whole,) = decide(owned, "erp", "crm", None)
    assert not whole.allowed and "credit_status" in whole.reason and "phone" in whole.reason
    # an entity without field declarations: a requester's unknown fields stay allowed
    plain = OwnedEntity("order", EntityOwnership(owner="erp", requesters=["crm"]), None)  # type: ignore[arg-type]
    assert all(d.allowed for d in decide(plain, "erp", "crm", None))


def test_a_requester_flow_writing_the_owners_field_is_sl100(project: Project) -> None:
    steps = """
    - id: push
      call: erp.upsert_customer
      with: {body: {customer_no: "{{ input.no }}", name: "{{ input.name }}", credit_status: "{{ input.rating }}"}}
    """
    path = project(
        {
            "systems/erp.yaml": ERP,
            "governance/ownership.yaml": OWNERSHIP,
            "flows/f.yaml": flow("crm-to-erp", "crm/customer", steps),
        }
    )
    (diag,) = codes(path, *GOVERNANCE)
    assert diag.code == "SL100" and diag.line == 7
    assert "credit_status owned by erp" in diag.message and "name" not in diag.message.split("writes to erp:")[1]
    assert diag.hint is not None and "credit_status" in diag.hint
