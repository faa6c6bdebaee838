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


def _simplejson(value: object) -> str:
    import simplejson

    return simplejson.dumps(value, use_decimal=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize(
    "value",
    [
        {"total": Decimal("528.02"), "lines": [{"qty": 3, "price": Decimal("0.125")}], "ok": True, "none": None},
        {"text": 'quote " backslash \\ tab \t newline \n nul \x00 del \x7f emoji 😀 line\u2028sep', "e": "é"},
        [2**64, -(2**63) - 1, 10**30, Decimal("1E+2"), Decimal("-0"), Decimal("1.5E-7"), 0.1, -0.0, 1e300],
        {1: "int key", False: "bool key", "s": ("tuple", "items")},
        [[[[[[[[[[Decimal("1")]]]]]]]]]] * 3,
        {"deep": [[[]]] * 2, "empty": {}},
    ],
)
def test_fast_and_simplejson_writers_agree(value: object) -> None:
    assert dumps(value) == _simplejson(value)


def test_deep_nesting_beyond_orjsons_limit_is_still_written() -> None:
    deep: object = Decimal("0.5")
    for _ in range(400):
        deep = [deep]
    assert dumps(deep) == "[" * 400 + "0.5" + "]" * 400


def test_non_finite_numbers_are_refused_wherever_they_are() -> None:
    with pytest.raises(ValueError):
        dumps({"a": {"b": [1, {"c": float("inf")}]}})
    with pytest.raises(ValueError):
        dumps({"a": [Decimal("sNaN")]})


def test_values_orjson_would_write_natively_are_still_refused() -> None:
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    with pytest.raises(TypeError):
        dumps({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(TypeError):
        dumps([Point(1)])
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError):
        dumps(cycle)
