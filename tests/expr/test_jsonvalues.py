"""JSON text ⇄ values with exact decimals: `loads` and `dumps`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runtime.expr import dumps, loads


def test_loads_numbers_exactly() -> None:
    doc = loads('{"a": 0.1, "b": 3, "c": -0.0, "d": 1e2, "e": 12345678901234567890.123456789}')
    assert doc == {
        "a": Decimal("0.1"),
        "b": 3,
        "c": Decimal("-0.0"),
        "d": Decimal("1E+2"),
        "e": Decimal("12345678901234567890.123456789"),
    }
    assert type(doc["a"]) is Decimal and type(doc["b"]) is int


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_loads_rejects_nan_and_infinity(text: str) -> None:
    with pytest.raises(ValueError, match="not a valid JSON number"):
        loads(text)


def test_loads_rejects_duplicate_keys_naming_the_key() -> None:
    with pytest.raises(ValueError, match="duplicate key 'amount'"):
        loads('{"id": 1, "x": {"amount": 1, "amount": 2}}')


def test_loads_bytes_and_invalid_input() -> None:
    assert loads('{"n": "Jos\u00e9"}'.encode()) == {"n": "José"}
    with pytest.raises(ValueError):
        loads(b'{"n": "\xff"}')
    with pytest.raises(ValueError):
        loads("{")
    with pytest.raises(ValueError):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError):
        loads("1" * 5000)  # integers beyond Python's digit limit


@pytest.mark.parametrize(
    "text",
    ['{"a":0.1,"b":0.30,"c":100,"d":-0.0}', "[1E+2,1.5E-7,12345678901234567890.123456789]", '"x"', "null"],
)
def test_round_trip_is_exact(text: str) -> None:
    assert dumps(loads(text)) == text


def test_dumps_forms() -> None:
    value = {"b": Decimal("0.30"), "a": [True, None, "é"]}
    assert dumps(value) == '{"b":0.30,"a":[true,null,"é"]}'
    assert dumps(value, pretty=True) == '{\n  "b": 0.30,\n  "a": [\n    true,\n    null,\n    "é"\n  ]\n}'
    assert dumps(value, sort_keys=True) == '{"a":[true,null,"é"],"b":0.30}'
    assert dumps({"b": 1, "a": 2}, pretty=True, sort_keys=True) == '{\n  "a": 2,\n  "b": 1\n}'


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), float("nan")])
def test_dumps_rejects_non_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        dumps([bad])


def test_dumps_rejects_non_json_objects() -> None:
    with pytest.raises(TypeError):
        dumps({"a": object()})
