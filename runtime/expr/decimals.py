"""Exact decimal helpers: converting to `Decimal`, money rounding, and text without exponents.

Numbers in Syncline are `int` or `decimal.Decimal` (never binary floats): JSON is parsed with
`parse_float=Decimal`, float literals in expressions become `Decimal` from their source text, and a
Python `float` that reaches an expression is converted through its shortest `repr`.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

from runtime.errors import ExpressionError
from runtime.expr.errors import LimitError

ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "down": decimal.ROUND_DOWN,
    "up": decimal.ROUND_UP,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}
"""`round_money` modes: names as analysts say them, mapped to the `decimal` constants."""

_QUANTA = tuple(Decimal(1).scaleb(-n) for n in range(0, 13))


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Convert an int, Decimal, float or numeric string to `Decimal`; anything else is an error."""
    t = type(value)
    if t is Decimal:
        return value  # type: ignore[return-value]
    if t is int:
        return Decimal(value)  # type: ignore[arg-type]
    if t is float:
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ExpressionError(f"{what}: {short_text(value)} is not a number") from None
        if not d.is_finite():
            raise ExpressionError(f"{what}: {short_text(value)} is not a finite number")
        return d
    if isinstance(value, bool) or value is None:
        raise ExpressionError(f"{what}: expected a number, got {type_name(value)}")
    if isinstance(value, int):
        return Decimal(int(value))
    raise ExpressionError(f"{what}: expected a number, got {type_name(value)}")


def to_int(d: Decimal, what: str, max_digits: int) -> int:
    """`int(d)` (truncated toward zero) for a finite decimal of at most `max_digits` integer digits.

    A larger one is refused before converting: `int(Decimal('1E+999999999'))` would build a
    415 MB integer in one uninterruptible step, and no integer of more digits can be written out."""
    if not d.is_finite():
        raise ExpressionError(f"{what}: {short_number(d)} is not a finite number")
    if d.adjusted() >= max_digits:
        raise LimitError(
            f"{what}: the number {short_number(d)} is too large to convert to an integer "
            f"(more than {max_digits} digits)"
        )
    return int(d)


def short_number(d: Decimal) -> str:
    """Text of a number for an error message, cut to 40 characters (`1E+999999999`, `99999...`)."""
    text = format_decimal(d)
    return text if len(text) <= 40 else text[:37] + "..."


def short_text(value: object) -> str:
    """`repr` of a value for an error message, cut to 40 characters."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def quantum(places: int) -> Decimal:
    """`Decimal('0.01')` for 2 places; `Decimal('1E+2')` for -2 (round to hundreds)."""
    if 0 <= places < len(_QUANTA):
        return _QUANTA[places]
    if not -30 <= places <= 30:
        raise ExpressionError(f"round_money: places must be between -30 and 30, got {places}")
    return Decimal(1).scaleb(-places)


def round_money(value: object, places: int = 2, mode: str = "half_up") -> Decimal:
    """Round to `places` decimal places with an explicit mode (half_up, half_even, down, up,
    ceiling, floor, half_down). `round_money(Decimal('2.345'))` → `Decimal('2.35')`."""
    if value is None:
        raise ExpressionError("round_money: value is null")
    rounding = ROUNDING_MODES.get(mode) if isinstance(mode, str) else None
    if rounding is None:
        raise ExpressionError(f"round_money: unknown mode {mode!r}; use one of {', '.join(ROUNDING_MODES)}")
    if type(places) is not int:
        raise ExpressionError(f"round_money: places must be an integer, got {type_name(places)}")
    d = to_decimal(value, "round_money")
    try:
        return d.quantize(quantum(places), rounding=rounding)
    except decimal.InvalidOperation:
        raise LimitError(f"round_money: {short_number(d)} has too many digits to round to {places} places") from None


def format_decimal(d: Decimal) -> str:
    """Text for a Decimal: plain notation (`100`, `0.30`, `0.0000001`) for ordinary magnitudes,
    scientific notation only for extreme exponents (where plain text would be huge)."""
    if d.is_finite() and -40 <= d.adjusted() <= 40:
        return format(d, "f")
    return str(d)


def type_name(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__
