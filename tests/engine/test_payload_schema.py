"""Payload schema checks: jsonschema-rs answers first, Python's jsonschema is the authority."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runtime.payload_schema import PayloadSchema

ORDER = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/line"},
        },
    },
    "$defs": {"line": {"type": "object", "properties": {"price": {"type": "number", "maximum": 100}}}},
}


def test_a_valid_document_is_answered_by_the_compiled_check_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = PayloadSchema(ORDER)
    assert schema._fast is not None

    class Refuses:
        def iter_errors(self, document: Any) -> Any:
            raise AssertionError("the Python validator ran for a valid document")

        is_valid = iter_errors

    monkeypatch.setattr(schema, "_python", Refuses())
    assert list(schema.iter_errors({"id": "A-1", "lines": [{"price": Decimal("0.05")}]})) == []
    assert schema.is_valid({"id": "A-1", "lines": [{"price": Decimal("99.99")}]})


def test_an_invalid_document_gets_the_python_validators_error_and_path() -> None:
    schema = PayloadSchema(ORDER)
    errors = list(schema.iter_errors({"id": "A-1", "lines": [{"price": Decimal("0.05")}, {"price": "x"}]}))
    assert [list(e.absolute_path) for e in errors] == [["lines", 1, "price"]]
    assert "'x' is not of type 'number'" in errors[0].message
    assert not schema.is_valid({"lines": []})


def test_decimals_are_compared_exactly_by_both() -> None:
    schema = PayloadSchema(ORDER)
    just_over = {"id": "A", "lines": [{"price": Decimal("100.00000000000000000001")}]}
    assert not schema.is_valid(just_over)
    assert [list(e.absolute_path) for e in schema.iter_errors(just_over)] == [["lines", 0, "price"]]
    assert schema.is_valid({"id": "A", "lines": [{"price": Decimal("100.000")}]})


def test_formats_are_asserted() -> None:
    schema = PayloadSchema(ORDER)
    assert not schema.is_valid({"id": "A", "lines": [{}], "email": "not an address"})
    assert schema.is_valid({"id": "A", "lines": [{}], "email": "ops@example.com"})


def test_where_the_two_differ_the_python_verdict_stands() -> None:
    # Python's `\d` matches any Unicode digit, ECMA-262's (jsonschema-rs) only 0-9
    schema = PayloadSchema({"type": "string", "pattern": "^\\d+$"})
    assert schema.is_valid("\u0661\u0662") and list(schema.iter_errors("\u0661\u0662")) == []
    assert not schema.is_valid("12a")


def test_values_the_compiled_check_cannot_take_go_to_python() -> None:
    schema = PayloadSchema({"type": "object"})
    assert schema.is_valid({1: "int key"})  # Python's jsonschema takes any mapping
    assert not schema.is_valid(object())


def test_schemas_with_outside_references_are_never_compiled() -> None:
    outside = PayloadSchema({"$ref": "https://example.com/order.json"})
    assert outside._fast is None
    assert PayloadSchema({"items": {"$ref": "common.json#/line"}})._fast is None
    assert PayloadSchema({"$defs": {"a": {}}, "$ref": "#/$defs/a"})._fast is not None
