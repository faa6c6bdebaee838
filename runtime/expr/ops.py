"""Operations the generated code calls: lookups, bounded arithmetic, comparison, text, loops.

Generated functions see only the names `namespace(limits)` returns (plus their constants), never
Python's builtins. Every helper works on JSON values (dict, list, str, int, Decimal, bool, None):
a lookup on anything else yields None, so no Python attribute of any object is reachable.
Bounds from `Limits` are checked *before* the work (a string repetition is sized first, a huge
decimal is refused before it becomes an integer, a value is measured before it is written as JSON)
and raise `LimitError`; loops check the render's time budget as they go.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from runtime.errors import ExpressionError
from runtime.expr.decimals import format_decimal, short_number, to_int, type_name
from runtime.expr.errors import LimitError
from runtime.expr.jsonvalues import dumps
from runtime.expr.limits import Limits
from runtime.expr.secrets import Secret

CHECK_EVERY = 16
"""Loops over items check the time budget every this many items (each item's work is bounded)."""
_MAX_STRING = Limits().max_string
_MAX_INDEX_DIGITS = 19  # no list is longer than 10**19 items: a larger index is simply out of range


def getattr_(obj: Any, key: Any) -> Any:
    """`obj.key` / `obj['key']` on anything that is not a plain dict: mappings look up, the rest is None."""
    if isinstance(obj, Mapping):
        try:
            return obj.get(key)
        except TypeError:  # unhashable key
            return None
    return None


def getitem(obj: Any, key: Any) -> Any:
    """`obj[key]`: dict key, list/string index (negative counts from the end); otherwise None."""
    t = type(obj)
    if t is dict or isinstance(obj, Mapping):
        try:
            return obj.get(key)
        except TypeError:
            return None
    if t is list or t is tuple or isinstance(obj, str):
        if type(key) is int:
            try:
                return obj[key]
            except IndexError:
                return None
        if type(key) is Decimal and key.is_finite() and key == key.to_integral_value():
            if key.adjusted() >= _MAX_INDEX_DIGITS:  # refused before int() builds a huge integer
                return None
            try:
                return obj[int(key)]
            except IndexError:
                return None
    return None


def has_key(obj: Any, key: Any) -> bool:
    """Whether `obj.key` exists (for `is defined` on lookups)."""
    if isinstance(obj, Mapping):
        try:
            return key in obj
        except TypeError:
            return False
    if isinstance(obj, list | tuple | str) and type(key) is int:
        return -len(obj) <= key < len(obj)
    return False


def slice_(obj: Any, start: Any, stop: Any, step: Any) -> Any:
    """`obj[start:stop:step]` for lists and strings."""
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if v is not None and type(v) is not int:
            raise ExpressionError(f"slice {name} must be an integer, got {type_name(v)}")
    if step == 0:
        raise ExpressionError("slice step cannot be zero")
    if isinstance(obj, list | tuple):
        return list(obj[start:stop:step])
    if isinstance(obj, str):
        return obj[start:stop:step]
    if obj is None:
        return None
    raise ExpressionError(f"cannot slice {type_name(obj)}")


def _num(value: Any, op: str, other: Any) -> int | Decimal:
    t = type(value)
    if t is int or t is Decimal:
        return value  # type: ignore[no-any-return]
    if t is float:
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ExpressionError(f"cannot {op} {type_name(value)} and {type_name(other)}")


def _nums(a: Any, b: Any, op: str) -> tuple[int | Decimal, int | Decimal]:
    try:
        return _num(a, op, b), _num(b, op, a)
    except ExpressionError:
        raise ExpressionError(f"cannot {op} {type_name(a)} and {type_name(b)}") from None


def iter_for(value: Any) -> list[Any]:
    """What `{% for %}` iterates: a list as is, an object's keys, a string's characters; null is empty."""
    t = type(value)
    if t is list:
        return value  # type: ignore[no-any-return]
    if value is None:
        return []
    if t is tuple or isinstance(value, Mapping | str):
        return list(value)
    if isinstance(value, list):
        return list(value)
    raise ExpressionError(f"cannot loop over {type_name(value)}")


def iter_items(value: Any, what: str) -> list[Any] | tuple[Any, ...]:
    """The items a list helper (`map_each`, `sum_of`, ...) walks: a list; null is empty."""
    t = type(value)
    if t is list or t is tuple:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise ExpressionError(f"{what} expects a list, got {type_name(value)}")


def iter_items_checked(state: RenderState, value: Any, what: str) -> Iterator[Any] | list[Any] | tuple[Any, ...]:
    """`iter_items` for `map_each` and `sum_of`: checks the time budget first, and every
    `CHECK_EVERY` items of a longer list."""
    state.check()
    items = iter_items(value, what)
    if len(items) <= CHECK_EVERY:
        return items
    return _checked(state, items)


def _checked(state: RenderState, items: list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    check = state.check
    for i, item in enumerate(items):
        if not i % CHECK_EVERY:
            check()
        yield item


def json_size(value: Any, limit: int) -> int:
    """How long `value` is at least when written as JSON, counted until the count passes `limit`.

    A value shared several times counts each time, as it is written (`[big] * 1000` is a thousand
    copies), so measuring takes at most about `limit` steps however the value was built."""
    total = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str or isinstance(v, str):
            total += len(v) + 2
        elif t is list or t is tuple or isinstance(v, list | tuple):
            total += len(v) + 1
            extend(v)
        elif isinstance(v, Mapping):
            total += 2 * len(v) + 1
            for k in v:
                total += len(k) + 2 if isinstance(k, str) else 3
            extend(v.values())
        elif t is Decimal:
            total += len(str(v))
        elif t is int:
            total += v.bit_length() * 3 // 10 + 1
        else:
            total += 1
        if total > limit:
            return total
    return total


def check_json_size(value: Any, limit: int, what: str) -> None:
    """Refuse (before writing it) a list or object whose JSON text would be longer than `limit`."""
    if isinstance(value, Mapping | list | tuple):
        n = json_size(value, limit)
        if n > limit:
            raise LimitError(f"{what} would be more than {limit} characters long (the limit)")


def unpack(value: Any, n: int) -> list[Any] | tuple[Any, ...]:
    """Unpacking for `{% for k, v in ... %}` and `{% set a, b = ... %}`."""
    if isinstance(value, list | tuple) and len(value) == n:
        return value
    raise ExpressionError(f"cannot unpack {type_name(value)} into {n} names")


def sum_numbers(items: Any, what: str = "sum") -> int | Decimal:
    """Exact sum of numbers (int and Decimal); null, strings and booleans are errors."""
    total: int | Decimal = 0
    for i, v in enumerate(items):
        t = type(v)
        if t is int or t is Decimal:
            total += v
        elif t is float:
            total += Decimal(repr(v))
        else:
            raise ExpressionError(f"{what}: item {i} is {type_name(v)}, not a number")
    return total


def loop_info(index0: int, seq: list[Any]) -> dict[str, Any]:
    """The `loop` object inside `{% for %}`."""
    n = len(seq)
    return {
        "index": index0 + 1,
        "index0": index0,
        "revindex": n - index0,
        "revindex0": n - index0 - 1,
        "first": index0 == 0,
        "last": index0 == n - 1,
        "length": n,
        "previtem": seq[index0 - 1] if index0 > 0 else None,
        "nextitem": seq[index0 + 1] if index0 + 1 < n else None,
    }


def contains(item: Any, container: Any) -> bool:
    """`item in container`: object keys, list items, substrings; `in null` is false."""
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            return False
    if isinstance(container, list | tuple):
        return item in container
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"cannot test whether {type_name(item)} is in a string")
        return item in container
    if container is None:
        return False
    raise ExpressionError(f"cannot test membership in {type_name(container)}")


def _cmp_pair(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    ta, tb = type(a), type(b)
    if (ta is int or ta is Decimal) and (tb is int or tb is Decimal):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if (
        ta is not bool
        and tb is not bool
        and isinstance(a, int | float | Decimal)
        and isinstance(b, int | float | Decimal)
    ):
        return _num(a, "compare", b), _num(b, "compare", a)
    raise ExpressionError(f"cannot compare {type_name(a)} and {type_name(b)} with {op}")


def lt(a: Any, b: Any) -> bool:
    x, y = _cmp_pair(a, b, "<")
    return bool(x < y)


def le(a: Any, b: Any) -> bool:
    x, y = _cmp_pair(a, b, "<=")
    return bool(x <= y)


def gt(a: Any, b: Any) -> bool:
    x, y = _cmp_pair(a, b, ">")
    return bool(x > y)


def ge(a: Any, b: Any) -> bool:
    x, y = _cmp_pair(a, b, ">=")
    return bool(x >= y)


def eq(a: Any, b: Any) -> bool:
    """Equality on JSON values: numbers by value (1 == 1.0), booleans are not numbers."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta is float:
        a = Decimal(repr(a))
    if tb is float:
        b = Decimal(repr(b))
    return bool(a == b)


def neg(a: Any) -> Any:
    t = type(a)
    if t is int or t is Decimal:
        return -a
    if t is float:
        return -Decimal(repr(a))
    raise ExpressionError(f"cannot negate {type_name(a)}")


def pos(a: Any) -> Any:
    t = type(a)
    if t is int or t is Decimal:
        return a
    if t is float:
        return Decimal(repr(a))
    raise ExpressionError(f"cannot apply unary + to {type_name(a)}")


def _to_text_basic(value: Any, limit: int = _MAX_STRING) -> str:
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        try:
            return str(value)
        except ValueError:  # more digits than Python writes (4300)
            raise LimitError(
                f"an integer of about {value.bit_length() * 3 // 10} digits is too long to write"
            ) from None
    if t is Decimal:
        return format_decimal(value)
    if isinstance(value, str):
        return value  # a Secret stays a Secret
    if t is float:
        return format_decimal(Decimal(repr(value)))
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        check_json_size(value, limit, f"the {type_name(value)} as text")
        return dumps(value)
    raise ExpressionError(f"cannot render {type(value).__name__} as text")


class RenderState:
    """Per-render state for the parts that need it: time budget, output buffers, the context
    (for `secret()`, `env()`, `now()`), and the registry (for `select('odd')`, `map('upper')`)."""

    __slots__ = ("_bufs", "_written", "ctx", "deadline", "limits", "registry")

    def __init__(self, ctx: Mapping[str, Any], limits: Limits, registry: Any) -> None:
        self.ctx = ctx
        self.limits = limits
        self.registry = registry
        self.deadline = limits.clock() + limits.time_budget
        self._bufs: list[list[str]] = []
        self._written = 0

    def check(self) -> None:
        """Raise `LimitError` once the render has used up its time budget."""
        if self.limits.clock() > self.deadline:
            raise self._over_budget()

    def remaining(self) -> float:
        left = self.deadline - self.limits.clock()
        if left <= 0:
            raise self._over_budget()
        return left

    def _over_budget(self) -> LimitError:
        return LimitError(f"render exceeded its time budget of {self.limits.time_budget:g} s")

    def check_size(self, text: str) -> str:
        if len(text) > self.limits.max_string:
            raise LimitError(f"string of {len(text)} characters exceeds the limit of {self.limits.max_string}")
        return text

    def check_items(self, n: int, what: str) -> None:
        if n > self.limits.max_items:
            raise LimitError(f"{what} would build {n} items, more than the limit of {self.limits.max_items}")

    def check_json(self, value: Any, what: str) -> None:
        """Refuse a list or object whose JSON text would exceed `max_string`, before writing it."""
        check_json_size(value, self.limits.max_string, what)

    def to_int(self, d: Decimal, what: str) -> int:
        """A decimal as an integer, refused (before converting) beyond `max_int_digits`."""
        return to_int(d, what, self.limits.max_int_digits)

    def to_text(self, value: Any) -> str:
        return self.check_size(_to_text_basic(value, self.limits.max_string))

    def push(self) -> None:
        self._bufs.append([])

    def write(self, text: str) -> None:
        self._written += len(text)
        if self._written > self.limits.max_string:
            raise LimitError(f"output exceeds the limit of {self.limits.max_string} characters")
        self._bufs[-1].append(text)

    def pop(self) -> str:
        parts = self._bufs.pop()
        out = "".join(parts)
        for p in parts:
            if type(p) is not str:
                return Secret(out)
        return out


def namespace(limits: Limits) -> dict[str, Any]:
    """The helpers generated code calls, with `limits` baked in. Keys are the generated names."""
    max_string = limits.max_string
    max_items = limits.max_items
    max_bits = limits.max_int_bits

    def too_long(n: int) -> LimitError:
        return LimitError(f"string of {n} characters would exceed the limit of {max_string}")

    def too_many(n: int) -> LimitError:
        return LimitError(f"list of {n} items would exceed the limit of {max_items}")

    def int_too_big() -> LimitError:
        return LimitError(f"integer result would exceed {limits.max_int_digits} digits")

    def add(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if (ta is Decimal or ta is int) and (tb is Decimal or tb is int):
            return a + b
        if isinstance(a, str) and isinstance(b, str):
            n = len(a) + len(b)
            if n > max_string:
                raise too_long(n)
            s = a + b
            return Secret(s) if (ta is not str or tb is not str) else s
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            n = len(a) + len(b)
            if n > max_items:
                raise too_many(n)
            return [*a, *b]
        x, y = _nums(a, b, "add")
        return x + y

    def sub(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if (ta is Decimal or ta is int) and (tb is Decimal or tb is int):
            return a - b
        x, y = _nums(a, b, "subtract")
        return x - y

    def mul(a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is Decimal:
            if tb is Decimal or tb is int:
                return a * b
        elif ta is int:
            if tb is Decimal:
                return a * b
            if tb is int:
                if a.bit_length() + b.bit_length() > max_bits:
                    raise int_too_big()
                return a * b
        return mul_slow(a, b)

    def mul_slow(a: Any, b: Any) -> Any:
        if type(a) is int and isinstance(b, str | list | tuple):
            a, b = b, a
        if type(b) is not int or not isinstance(a, str | list | tuple):
            x, y = _nums(a, b, "multiply")
            return mul(x, y)
        if b <= 0 or not a:
            return a[:0] if isinstance(a, str) else []
        n = len(a) * b
        if isinstance(a, str):
            if n > max_string:
                raise too_long(n)
            s = a * b
            return Secret(s) if type(a) is not str else s
        if n > max_items:
            raise too_many(n)
        # the copies share their items: size what writing them out would take, not just their number
        size = json_size(a, max_string) * b
        if size > max_string:
            raise LimitError(f"list repetition would be more than {max_string} characters as JSON (the limit)")
        return list(a) * b

    def div(a: Any, b: Any) -> Decimal:
        x, y = _nums(a, b, "divide")
        if not y:
            raise ExpressionError("division by zero")
        return Decimal(x) / Decimal(y)

    def floordiv(a: Any, b: Any) -> int | Decimal:
        x, y = _nums(a, b, "divide")
        if not y:
            raise ExpressionError("division by zero")
        if type(x) is int and type(y) is int:
            return x // y
        return (Decimal(x) / Decimal(y)).to_integral_value(rounding=decimal.ROUND_FLOOR)

    def mod(a: Any, b: Any) -> int | Decimal:
        x, y = _nums(a, b, "take the remainder of")
        if not y:
            raise ExpressionError("modulo by zero")
        if type(x) is int and type(y) is int:
            return x % y
        # Decimal's own remainder is exact, and refuses (InvalidOperation) a quotient of more digits
        # than the precision instead of answering with a rounded, wrong remainder; then floor it
        r = Decimal(x) % Decimal(y)
        if not r:
            return abs(r)  # 0.0, never -0.0
        return r + y if (r < 0) != (y < 0) else r

    def pow_(a: Any, b: Any) -> int | Decimal:
        x, y = _nums(a, b, "raise")
        if type(x) is int and type(y) is int:
            if y < 0:
                if x == 0:
                    raise ExpressionError("zero cannot be raised to a negative power")
                return Decimal(x) ** y
            if x not in (0, 1, -1) and (y > max_bits or (x.bit_length() - 1) * y > max_bits):
                raise int_too_big()
            result: int = x**y
            return result
        if type(y) is Decimal and y == y.to_integral_value() and abs(y) > max_bits * 1000:
            raise LimitError(f"exponent {short_number(y)} is too large")
        return Decimal(x) ** y

    def to_text(value: Any) -> str:
        s = _to_text_basic(value, max_string)
        if len(s) > max_string:
            raise too_long(len(s))
        return s

    def cat(*parts: str) -> str:
        s = "".join(parts)
        if len(s) > max_string:
            raise too_long(len(s))
        for p in parts:
            if type(p) is not str:
                return Secret(s)
        return s

    def concat(*values: Any) -> str:
        return cat(*[v if type(v) is str else to_text(v) for v in values])

    ns: dict[str, Any] = {
        "__builtins__": {},
        "_ty": type,
        "_dict": dict,
        "_list": list,
        "_str": str,
        "_len": len,
        "_enum": enumerate,
        "_ga": getattr_,
        "_gi": getitem,
        "_has": has_key,
        "_sl": slice_,
        "_add": add,
        "_sub": sub,
        "_mul": mul,
        "_div": div,
        "_fdiv": floordiv,
        "_mod": mod,
        "_pow": pow_,
        "_neg": neg,
        "_pos": pos,
        "_lt": lt,
        "_le": le,
        "_gt": gt,
        "_ge": ge,
        "_eq": eq,
        "_in": contains,
        "_s": to_text,
        "_cat": cat,
        "_cc": concat,
        "_itf": iter_for,
        "_itl": iter_items,
        "_itlc": iter_items_checked,
        "_unp": unpack,
        "_sum": sum_numbers,
        "_loop": loop_info,
        "_RS": RenderState,
    }
    return ns
