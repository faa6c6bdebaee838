"""Comparing JSON-like values the way a test reader expects, and listing the differences with their
paths (`tax_total: expected 19.03, got 19.02`).

Numbers compare by value as decimals: `19.00` equals `19`, `19.0` and `"19.00"` does not (a string is
not a number), and `0.1` written in a test equals the float `0.1` a system returned. Booleans never
equal numbers. With `exact`, numbers must also have the same scale — the digits after the decimal
point as written or sent: `19.00` then differs from `19` and from `19.0`. Use it where a receiving
system cares how an amount is written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def differences(
    expected: Any, actual: Any, path: str = "", *, subset: bool = False, exact: bool = False, limit: int = 20
) -> list[str]:
    """Human-readable differences; with `subset`, extra keys in `actual` dicts are allowed; with
    `exact`, numbers must have the same scale as well as the same value."""
    out: list[str] = []
    _diff(expected, actual, path, _Options(subset, exact, limit), out)
    return out


class _Options:
    __slots__ = ("exact", "limit", "subset")

    def __init__(self, subset: bool, exact: bool, limit: int) -> None:
        self.subset = subset
        self.exact = exact
        self.limit = limit


def _scale(value: int | float | Decimal) -> int:
    exponent = Decimal(str(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _show(value: Any) -> str:
    from runtime.expr import dumps

    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _diff(expected: Any, actual: Any, path: str, options: _Options, out: list[str]) -> None:
    if len(out) >= options.limit:
        return
    subset = options.subset
    where = path or "(root)"
    if _is_number(expected) and _is_number(actual):
        if Decimal(str(expected)) != Decimal(str(actual)):
            out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
        elif options.exact and _scale(expected) != _scale(actual):
            out.append(
                f"{where}: expected {_show(expected)}, got {_show(actual)} "
                f"(same value, but exact: {_scale(expected)} decimal places expected, {_scale(actual)} given)"
            )
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{child}: missing (expected {_show(value)})")
            else:
                _diff(value, actual[key], child, options, out)
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
            _diff(e, a, f"{path}[{index}]", options, out)
        return
    if type(expected) is not type(actual) and not (isinstance(expected, str) and isinstance(actual, str)):
        out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
        return
    if expected != actual:
        out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")
