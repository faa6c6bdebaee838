"""The JSONPath Compliance Test Suite (RFC 9535), all 703 cases, through Syncline's JSONPath layer.

Run twice: over the documents as the suite gives them (floats), and over the same documents parsed
by Syncline's `loads` (every non-integer number a Decimal), so filters like `$[?@.price > 1]`
are proven on Decimal documents too.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runtime.expr import CompileError, PathCompiler, loads

# Shipped inside the repository with its BSD-2-Clause licence (tests/expr/data/README.md says where from).
CTS = Path(__file__).resolve().parent / "data" / "jsonpath-cts.json"
EXPECTED_CASES = 703


def _cases() -> list[dict[str, Any]]:
    assert CTS.is_file(), f"JSONPath compliance suite not found at {CTS}"
    tests: list[dict[str, Any]] = json.loads(CTS.read_text(encoding="utf-8"))["tests"]
    assert len(tests) == EXPECTED_CASES, f"expected {EXPECTED_CASES} cases in {CTS}, found {len(tests)}"
    return tests


def norm(value: Any) -> Any:
    """Type-aware comparison form: 1 == 1.0 == Decimal('1.0'), but true != 1 and '1' != 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | Decimal):
        return ("num", Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    if isinstance(value, dict):
        return ("obj", sorted((k, norm(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("arr", [norm(v) for v in value])
    raise TypeError(type(value))


def run_suite(decimal_documents: bool) -> tuple[int, list[str]]:
    paths = PathCompiler(size=2048)
    passed, failures = 0, []
    for case in _cases():
        name, selector = case["name"], case["selector"]
        if case.get("invalid_selector"):
            try:
                paths.compile(selector)
            except CompileError as exc:
                if exc.code == "SL031":
                    passed += 1
                else:
                    failures.append(f"{name}: wrong code {exc.code}")
            else:
                failures.append(f"{name}: invalid selector {selector!r} was accepted")
            continue
        document = case["document"]
        if decimal_documents:
            document = loads(json.dumps(document))
        try:
            got = paths.compile(selector).find(document)
        except Exception as exc:
            failures.append(f"{name}: {selector!r} raised {type(exc).__name__}: {exc}")
            continue
        expected = [case["result"]] if "result" in case else case["results"]
        if any(norm(got) == norm(exp) for exp in expected):
            passed += 1
        else:
            failures.append(f"{name}: {selector!r} gave {got!r}, expected {expected[0]!r}")
    return passed, failures


@pytest.mark.parametrize("decimal_documents", [False, True], ids=["json-documents", "decimal-documents"])
def test_compliance_suite_passes_completely(decimal_documents: bool) -> None:
    passed, failures = run_suite(decimal_documents)
    assert not failures, f"{len(failures)} CTS failures:\n" + "\n".join(failures[:40])
    assert passed == EXPECTED_CASES


def test_decimal_documents_really_hold_decimals() -> None:
    """Guard for the second run: the parsed documents must contain Decimal numbers."""
    with_fraction = [c for c in _cases() if "document" in c and "." in json.dumps(c["document"])]
    assert with_fraction
    doc = loads(json.dumps({"price": 1.5}))
    assert type(doc["price"]) is Decimal
    assert PathCompiler().compile("$[?@.price > 1]").find([doc, {"price": Decimal("0.5")}]) == [doc]
