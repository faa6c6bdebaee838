"""Typed checks (C13): `input.<path>` against trigger and mapping schemas (SL120), step outputs, and
mapping output against its `output_schema` (SL121 required, SL122 not allowed, SL123 types)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.compiler import check_project
from runtime.compiler.typed import SchemaView, TypeInference, compatible
from tests.governance.conftest import ROOT, Project, codes

TYPED = ("SL120", "SL121", "SL122", "SL123")

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "total": {"type": "number"},
        "customer": {"$ref": "#/$defs/customer"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
        "meta": {"type": "object", "additionalProperties": True, "properties": {"a": {}}},
        "extra": {"type": "object"},
        "party": {"anyOf": [{"properties": {"vat": {"type": "string"}}}, {"properties": {"ssn": {"type": "string"}}}]},
    },
    "$defs": {"customer": {"allOf": [{"properties": {"id": {"type": "string"}}}, {"properties": {"tax_id": {}}}]}},
}


@pytest.mark.parametrize(
    ("path", "verdict"),
    [
        (("customer", "id"), "ok"),
        (("customer", "tax_id"), "ok"),
        (("custmer", "id"), ("custmer", 0)),
        (("customer", "taxid"), ("taxid", 1)),
        (("lines", 0, "sku"), "ok"),
        (("lines", 0, "skuu"), ("skuu", 2)),
        (("meta", "anything"), "ok"),  # additionalProperties: true opens it
        (("extra", "anything"), "ok"),  # no properties: no verdict
        (("party", "vat"), "ok"),
        (("party", "ssn"), "ok"),
        (("party", "iban"), ("iban", 1)),
    ],
)
def test_schema_walk(path: tuple[str | int, ...], verdict: Any) -> None:
    result = SchemaView(ORDER_SCHEMA, "order.json").walk(path)
    if verdict == "ok":
        assert isinstance(result, list)
    else:
        assert not isinstance(result, list)
        index, name, _known = result
        assert (name, index) == verdict


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("EUR", {"string"}),
        ("{{ input.id }} EUR", {"string"}),
        ("{{ input.currency | upper }}", {"string"}),
        ("{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}", {"number"}),
        ("{{ input.lines | length }}", {"integer"}),
        ("{{ input.total > 100 }}", {"boolean"}),
        ("{{ input.lines | map_each({'a': '{{ item.x }}'}) }}", {"array"}),
        ("{{ input.total }}", {"number"}),  # from the input schema
        ("{{ input.id | default(none) }}", {"string", "null"}),
        ("{{ input.unknown_thing }}", None),
        ("{{ input.a + input.b }}", None),
    ],
)
def test_type_inference(text: str, types: set[str] | None) -> None:
    inferred = TypeInference(SchemaView(ORDER_SCHEMA, "order.json")).value(text)
    assert inferred == (frozenset(types) if types is not None else None)


def test_compatibility_is_lenient_for_computed_numbers_only() -> None:
    assert compatible(frozenset({"integer"}), frozenset({"number"}))
    assert compatible(frozenset({"number"}), frozenset({"integer"}))
    assert not compatible(frozenset({"number"}), frozenset({"integer"}), literal=True)
    assert not compatible(frozenset({"string"}), frozenset({"number", "null"}))


def test_bundled_project_is_typed_clean() -> None:
    assert [d for d in check_project(ROOT).diagnostics if d.code in TYPED] == []


def _files(schema: dict[str, Any], flow_body: str) -> dict[str, str]:
    return {"schemas/order.json": json.dumps(schema), "flows/f.yaml": flow_body}


def test_webhook_schema_catches_input_typos_with_a_suggestion(project: Project) -> None:
    body = """
    kind: Flow
    name: f
    trigger: {webhook: {path: /hooks/f, schema: schemas/order.json, ordering_key: "{{ input.customer.id }}"}}
    steps:
      - id: guard
        if: input.total > 0 and input.custmer.id
        set: {sku: "{{ input.lines[0].sku }}", meta: "{{ input.meta.whatever }}"}
      - foreach: "{{ input.lines }}"
        steps: [{set: {sku: "{{ item.skuu }}"}}]
    """
    (diag,) = codes(project(_files(ORDER_SCHEMA, body)), *TYPED)
    assert diag.code == "SL120" and diag.line == 6 and diag.hint == "did you mean 'customer'?"
    assert "`input.custmer`" in diag.message and "schemas/order.json" in diag.message


def test_no_schema_means_no_verdict(project: Project) -> None:
    body = """
    kind: Flow
    name: f
    trigger: {webhook: {path: /hooks/f}}
    steps: [{set: {a: "{{ input.custmer.id }}"}}]
    """
    assert codes(project({"flows/f.yaml": body}), *TYPED) == []


def test_step_output_checked_against_the_mapping_output_schema(project: Project) -> None:
    out_schema = {"type": "object", "properties": {"order_ref": {"type": "string"}, "total": {"type": "number"}}}
    files = {
        "schemas/out.json": json.dumps(out_schema),
        "mappings/m.yaml": (
            "kind: Mapping\nname: m\noutput_schema: schemas/out.json\nfields: {order_ref: x, total: 1}\n"
        ),
        "flows/f.yaml": (
            "kind: Flow\nname: f\ntrigger: {manual: {}}\nsteps:\n  - id: order\n    map: m\n"
            "  - set: {a: '{{ steps.order.output.totl }}', b: '{{ steps.order.output.total }}'}\n"
        ),
    }
    (diag,) = codes(project(files), "SL120")
    assert diag.hint == "did you mean 'total'?" and "output of step 'order'" in diag.message


MAPPING_SCHEMA = {
    "type": "object",
    "required": ["order_ref", "total", "lines"],
    "additionalProperties": False,
    "properties": {
        "order_ref": {"type": "string"},
        "total": {"type": "number"},
        "count": {"type": "integer"},
        "status": {"enum": ["open", "paid"]},
        "lines": {"type": "array"},
        "address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
    },
}


def _mapping(fields: str) -> dict[str, str]:
    return {
        "schemas/in.json": json.dumps(ORDER_SCHEMA),
        "schemas/out.json": json.dumps(MAPPING_SCHEMA),
        "mappings/m.yaml": "kind: Mapping\nname: m\ninput_schema: schemas/in.json\noutput_schema: schemas/out.json\n"
        "fields:\n" + fields,
    }


def test_mapping_output_against_its_schema(project: Project) -> None:
    fields = (
        "  order_ref: '{{ input.id }}'\n"  # 6
        "  total: '{{ input.id | upper }}'\n"  # 7: string for a number
        "  count: 2.5\n"  # 8: not an integer
        "  status: closed\n"  # 9: not in the enum
        "  totl: 1\n"  # 10: not allowed
        "  address: {street: x}\n"  # 11: city missing, street not checked (no additionalProperties: false)
        "  name: '{{ input.customer.nme }}'\n"  # 12: unknown input property (and not allowed)
    )
    found = sorted((d.line, d.code) for d in codes(project(_mapping(fields)), *TYPED))
    assert found == [
        (5, "SL121"),  # lines missing
        (7, "SL123"),
        (8, "SL123"),
        (9, "SL123"),
        (10, "SL122"),
        (11, "SL121"),
        (12, "SL120"),
        (12, "SL122"),
    ], found


def test_well_typed_mapping_is_clean(project: Project) -> None:
    fields = (
        "  order_ref: 'SO-{{ input.id }}'\n"
        "  total: \"{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}\"\n"
        "  count: '{{ input.lines | length }}'\n"
        "  status: open\n"
        "  lines: \"{{ input.lines | map_each({'sku': '{{ item.sku }}'}) }}\"\n"
        "  address: {city: '{{ input.customer.id | default(\"x\") }}'}\n"
    )
    assert codes(project(_mapping(fields)), *TYPED) == []
