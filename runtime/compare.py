"""Comparing JSON-like values the way a test reader expects: numbers by value (0.30 equals 0.3),
booleans never equal to numbers, and a list of differences with their paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def differences(expected: Any, actual: Any, path: str = "", *, subset: bool = False, limit: int = 20) -> list[str]:
    """Human-readable differences; with `subset`, extra keys in `actual` dicts are allowed."""
    out: list[str] = []
    _diff(expected, actual, path, subset, out, limit)
    return out


def _show(value: Any) -> str:
    from runtime.expr import dumps

    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _diff(expected: Any, actual: Any, path: str, subset: bool, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    where = path or "(root)"
    if _is_number(expected) and _is_number(actual):
        if Decimal(str(expected)) != Decimal(str(actual)):
            out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{child}: missing (expected {_show(value)})")
            else:
                _diff(value, actual[key], child, subset, out, limit)
        if not subset:
            for key in actual:
                if key not in expected:
                    child = f"{path}.{key}" if path else str(key)
                    out.append(f"{child}: unexpected (got {_show(actual[key])})")
        return
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            out.append(f"{where}: expected {len(expected)} items, got {len(actual)}")
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            _diff(e, a, f"{path}[{index}]", subset, out, limit)
        return
    if type(expected) is not type(actual) and not (isinstance(expected, str) and isinstance(actual, str)):
        out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
        return
    if expected != actual:
        out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
