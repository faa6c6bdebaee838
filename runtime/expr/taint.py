"""Taint tracking: what the generated code calls, in its secret-aware variant, around every filter,
function and operator, so that a value computed from a secret stays secret-marked.

One rule for every operation, whatever it does: when an argument is (or holds) a secret-marked
string, a string result is a `Secret`, and so is every string of a list or object result built from
it. Text joins (`~`, `+`, text around `{{ }}`) keep the finer `SecretText` mark while every secret
part is one. Picking an item out of a list or object keeps that item's own mark (items carry theirs).
An error raised while working on a secret-marked value never shows that value: its message is
replaced by one naming the operation.

The code generator emits this variant only for expressions that call `secret()` and for renders
whose context has its `Taint` switch on; everything else runs the plain variant, which pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from runtime.errors import ExpressionError
from runtime.expr.secrets import Secret, SecretText

_SCALARS = (bool, int, float, type(None))
_PLAIN = frozenset({str, int, Decimal, bool, float, type(None)})


def tainted(value: Any) -> bool:
    """Whether `value` is, or holds, a secret-marked string."""
    t = type(value)
    if t in _PLAIN:
        return False
    if t is dict:
        return any(tainted(k) or tainted(v) for k, v in value.items())
    if t is list or t is tuple:
        return any(tainted(v) for v in value)
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(tainted(k) or tainted(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(tainted(v) for v in value)
    return False


def _any_tainted(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    for a in args:
        if tainted(a):
            return True
    if kwargs:
        for v in kwargs.values():
            if tainted(v):
                return True
    return False


def mark(value: Any) -> Any:
    """`value` with every string secret-marked (strings already marked keep their mark)."""
    if isinstance(value, str):
        return value if isinstance(value, Secret) else Secret(value)
    if isinstance(value, dict):
        return {mark(k): mark(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark(v) for v in value]
    return value


def _hidden(name: str) -> ExpressionError:
    return ExpressionError(f"{name}: failed on a value derived from a secret (details are not shown)")


def _result(result: Any, first: Any, first_tainted: bool, rest_tainted: bool) -> Any:
    if isinstance(result, str):
        if type(result) is SecretText or type(result) is Secret:
            return result
        return Secret(result)
    if isinstance(result, _SCALARS):
        return result
    if rest_tainted or (first_tainted and isinstance(first, str)):
        return mark(result)
    return result  # items picked out of a marked list or object carry their own marks


def call(name: str, fn: Callable[..., Any], value: Any, *args: Any, **kwargs: Any) -> Any:
    """A filter `value | name(*args)` (`fn(value, *args)`)."""
    first = tainted(value)
    rest = _any_tainted(args, kwargs)
    if not (first or rest):
        return fn(value, *args, **kwargs)
    try:
        result = fn(value, *args, **kwargs)
    except Exception:
        raise _hidden(name) from None
    return _result(result, value, first, rest)


def call_state(name: str, fn: Callable[..., Any], state: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
    """A filter that takes the render state first (`fn(state, value, *args)`)."""
    first = tainted(value)
    rest = _any_tainted(args, kwargs)
    if not (first or rest):
        return fn(state, value, *args, **kwargs)
    try:
        result = fn(state, value, *args, **kwargs)
    except Exception:
        raise _hidden(name) from None
    return _result(result, value, first, rest)


def call_function(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A function `name(*args)`; a render-state argument, if any, is not data (never tainted)."""
    if not _any_tainted(args, kwargs):
        return fn(*args, **kwargs)
    try:
        result = fn(*args, **kwargs)
    except Exception:
        raise _hidden(f"{name}()") from None
    return _result(result, None, False, True)


def text_op(name: str, fn: Callable[..., Any], base: Any, *args: Any) -> Any:
    """An index, slice or loop over `base`: characters of a marked string are marked; items of a
    list or object keep their own marks."""
    if not (type(base) is not str and isinstance(base, Secret)) and not _any_tainted(args, {}):
        return fn(base, *args)
    try:
        result = fn(base, *args)
    except Exception:
        raise _hidden(name) from None
    if isinstance(base, str) or any(tainted(a) for a in args):
        return mark(result)
    return result


def join(name: str, fn: Callable[..., Any], *parts: Any) -> Any:
    """A text join (`~`, `+`, text around `{{ }}`): `SecretText` while every marked part is one (and
    no part is a list or object holding a secret), else `Secret`."""
    kind: type[str] | None = None
    for p in parts:
        if type(p) in _PLAIN:
            continue
        if isinstance(p, str):
            t = type(p)
            if t is SecretText:
                kind = kind or SecretText
            elif t is not str and isinstance(p, Secret):
                kind = Secret
        elif isinstance(p, Mapping | list | tuple) and tainted(p):
            kind = Secret
    if kind is None:
        return fn(*parts)
    try:
        result = fn(*parts)
    except Exception:
        raise _hidden(name) from None
    if isinstance(result, str):
        return kind(result)
    return result  # list + list: items keep their marks


def namespace() -> dict[str, Any]:
    """The names the secret-aware variant of generated code calls."""
    return {
        "_Tf": call,
        "_Tfs": call_state,
        "_Tfn": call_function,
        "_Tx": text_op,
        "_Tj": join,
    }
