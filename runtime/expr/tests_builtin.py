"""Built-in Jinja tests (`x is number`, `x is divisibleby 3`, `select('odd')`) over JSON values.

`defined` / `undefined` on a lookup (`input.customer is defined`) are compiled to a key check by
the code generator, so a key holding null counts as defined; on other expressions they test for null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from runtime.errors import ExpressionError
from runtime.expr import ops
from runtime.expr.decimals import short_number, type_name
from runtime.expr.registry import Spec


def defined(value: Any) -> bool:
    """`input.x is defined`: true when the key exists, even when it holds null (on other expressions: not null)."""
    return value is not None


def undefined(value: Any) -> bool:
    """`input.x is undefined`: true when the key is missing; a key holding null is defined."""
    return value is None


def none(value: Any) -> bool:
    """True for null."""
    return value is None


def number(value: Any) -> bool:
    """True for integers and decimals (not booleans)."""
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def string(value: Any) -> bool:
    """True for strings."""
    return isinstance(value, str)


def mapping(value: Any) -> bool:
    """True for objects."""
    return isinstance(value, Mapping)


def sequence(value: Any) -> bool:
    """True for arrays (lists)."""
    return isinstance(value, list | tuple)


def boolean(value: Any) -> bool:
    """True for true and false."""
    return isinstance(value, bool)


def integer(value: Any) -> bool:
    """True for integer numbers (`3`, not `3.0`, not `true`)."""
    return isinstance(value, int) and not isinstance(value, bool)


def decimal(value: Any) -> bool:
    """True for non-integer-typed numbers (`3.0`, `0.1`)."""
    return isinstance(value, Decimal | float)


def eq(value: Any, other: Any) -> bool:
    """`x is eq 3` — same as `x == 3`."""
    return ops.eq(value, other)


def ne(value: Any, other: Any) -> bool:
    """`x is ne 3` — same as `x != 3`."""
    return not ops.eq(value, other)


def lt(value: Any, other: Any) -> bool:
    """`x is lt 3` — same as `x < 3`."""
    return ops.lt(value, other)


def gt(value: Any, other: Any) -> bool:
    """`x is gt 3` — same as `x > 3`."""
    return ops.gt(value, other)


def le(value: Any, other: Any) -> bool:
    """`x is le 3` — same as `x <= 3`."""
    return ops.le(value, other)


def ge(value: Any, other: Any) -> bool:
    """`x is ge 3` — same as `x >= 3`."""
    return ops.ge(value, other)


def in_(value: Any, container: Any) -> bool:
    """`x is in ['a', 'b']` — same as `x in [...]`."""
    return ops.contains(value, container)


def truthy(value: Any) -> bool:
    """True for everything except null, false, 0, '' and empty lists/objects."""
    return bool(value)


def falsy(value: Any) -> bool:
    """The opposite of truthy."""
    return not value


def _integral(state: ops.RenderState, value: Any, what: str) -> int:
    """An integer value; a decimal with no fraction is converted, refused first when too large."""
    if isinstance(value, bool) or value is None:
        raise ExpressionError(f"{what}: expected an integer, got {type_name(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return state.to_int(value, what)
    if isinstance(value, Decimal):
        raise ExpressionError(f"{what}: expected an integer, got {short_number(value)}")
    raise ExpressionError(f"{what}: expected an integer, got {type_name(value)}")


def even(state: ops.RenderState, value: Any) -> bool:
    """True for even integers."""
    return _integral(state, value, "even") % 2 == 0


def odd(state: ops.RenderState, value: Any) -> bool:
    """True for odd integers."""
    return _integral(state, value, "odd") % 2 == 1


def divisibleby(state: ops.RenderState, value: Any, num: Any) -> bool:
    """`x is divisibleby 3`."""
    divisor = _integral(state, num, "divisibleby")
    if divisor == 0:
        raise ExpressionError("divisibleby: division by zero")
    return _integral(state, value, "divisibleby") % divisor == 0


def regex_match(state: ops.RenderState, value: Any, pattern: Any, ignorecase: bool = False) -> bool:
    """`x is regex_match('^[A-Z]{2}[0-9]+$')`: the pattern matches at the start of the string."""
    from runtime.expr.filters import regex_match as _match

    return _match(state, value, pattern, ignorecase)


def builtin_tests() -> dict[str, Spec]:
    from runtime.expr.filters import compile_pattern

    plain: dict[str, Callable[..., bool]] = {
        "defined": defined,
        "undefined": undefined,
        "none": none,
        "number": number,
        "string": string,
        "mapping": mapping,
        "sequence": sequence,
        "boolean": boolean,
        "integer": integer,
        "decimal": decimal,
        "float": decimal,
        "eq": eq,
        "==": eq,
        "equalto": eq,
        "ne": ne,
        "!=": ne,
        "lt": lt,
        "<": lt,
        "lessthan": lt,
        "gt": gt,
        ">": gt,
        "greaterthan": gt,
        "le": le,
        "<=": le,
        "ge": ge,
        ">=": ge,
        "in": in_,
        "truthy": truthy,
        "falsy": falsy,
    }
    out = {name: Spec(name, fn, doc=(fn.__doc__ or "").strip()) for name, fn in plain.items()}
    for name, fn in (("even", even), ("odd", odd), ("divisibleby", divisibleby)):
        out[name] = Spec(name, fn, doc=(fn.__doc__ or "").strip(), needs_state=True)
    out["regex_match"] = Spec(
        "regex_match",
        regex_match,
        doc=(regex_match.__doc__ or "").strip(),
        needs_state=True,
        prepare=compile_pattern,
    )
    return out
