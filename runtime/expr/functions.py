"""Built-in global functions: `now()`, `uuid()`, `range(n)`, `dict(a=1)`, `env('NAME')`, `secret('NAME')`.

`now()`, `env()` and `secret()` read services the caller puts in the render context under keys that
expressions cannot name (names starting with `__` are refused at compile time):

- `CLOCK_KEY` (`"__clock__"`): a callable returning an aware `datetime`, or an object with `.now()`;
  without it `now()` is the current UTC time.
- `SECRETS_KEY` (`"__secrets__"`): `resolve(name) -> str | None`. `secret()` returns a `SecretText`
  (a `Secret` when shorter than 4 characters) and turns on the context's `Taint` switch
  (`TAINT_KEY`, when the context has one), so the rest of the run keeps values derived from it marked.
- `ENV_KEY` (`"__env__"`): `resolve(name) -> str | None`. `env('NAME')` of an unset setting is an
  error unless a fallback is given (`env('NAME', 'x')`); `env('NAME') | default('x')` is compiled
  as `env('NAME', none) | default('x')`, so the filter's fallback applies.

`now()` returns an ISO 8601 string with the UTC offset and milliseconds, e.g.
`2026-11-24T21:43:00.123+00:00` (format it with `| format_date('%d.%m.%Y')`).
"""

from __future__ import annotations

import datetime as dt
import uuid as _uuid
from typing import Any

from runtime.errors import ExpressionError
from runtime.expr.decimals import type_name
from runtime.expr.errors import LimitError
from runtime.expr.ops import RenderState
from runtime.expr.registry import Spec
from runtime.expr.secrets import MIN_SECRET_LENGTH, TAINT_KEY, Secret, SecretText

CLOCK_KEY = "__clock__"
SECRETS_KEY = "__secrets__"
ENV_KEY = "__env__"


def now(state: RenderState) -> str:
    """The current time as ISO 8601 with offset (from the run's clock when there is one)."""
    clock = state.ctx.get(CLOCK_KEY)
    if clock is None:
        moment = dt.datetime.now(dt.UTC)
    else:
        moment = clock.now() if hasattr(clock, "now") else clock()
        if not isinstance(moment, dt.datetime):
            raise ExpressionError("now(): the clock did not return a datetime")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat(timespec="milliseconds")


def uuid() -> str:
    """A new random UUID (version 4) as text."""
    return str(_uuid.uuid4())


def range_(state: RenderState, *args: Any) -> list[int]:
    """`range(5)` → [0, 1, 2, 3, 4]; `range(1, 10, 2)`; bounded by the `max_items` limit."""
    if not 1 <= len(args) <= 3:
        raise ExpressionError("range() takes 1 to 3 integers")
    for a in args:
        if type(a) is not int:
            raise ExpressionError(f"range() takes integers, got {type_name(a)}")
    if len(args) == 3 and args[2] == 0:
        raise ExpressionError("range() step cannot be zero")
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:  # more items than a machine integer counts
        raise LimitError(f"range() would build more than the limit of {state.limits.max_items} items") from None
    state.check_items(n, "range()")
    state.check()
    return list(r)


def dict_(**kwargs: Any) -> dict[str, Any]:
    """`dict(a=1, b='x')` → {'a': 1, 'b': 'x'}."""
    return dict(kwargs)


def _resolve(state: RenderState, key: str, fn: str, name: Any) -> str | None:
    resolver = state.ctx.get(key)
    if resolver is None:
        raise ExpressionError(f"{fn}() is not available here")
    if not isinstance(name, str) or not name:
        raise ExpressionError(f"{fn}() takes a name, e.g. {fn}('API_TOKEN')")
    value = resolver(name)
    if value is None:
        raise ExpressionError(f"{fn}({name!r}) is not defined")
    return str(value)


def secret(state: RenderState, name: Any) -> Secret:
    """The secret `name`, masked wherever it would be shown."""
    value = _resolve(state, SECRETS_KEY, "secret", name) or ""
    switch = state.ctx.get(TAINT_KEY)
    if switch is not None:
        switch.active = True
    return SecretText(value) if len(value) >= MIN_SECRET_LENGTH else Secret(value)


class _NoFallback:
    """`env()` without a fallback: an unset setting is an error (shown in usage hints)."""

    def __repr__(self) -> str:
        return "<error when unset>"


NO_FALLBACK: Any = _NoFallback()


def env(state: RenderState, name: Any, fallback: Any = NO_FALLBACK) -> Any:
    """The setting `name` (an environment variable); unset: x from `env(name, x)` or `| default(x)`, else an error.

    The error names the setting and how to give a fallback; the caller adds where it was used."""
    resolver = state.ctx.get(ENV_KEY)
    if resolver is None:
        raise ExpressionError("env() is not available here")
    if not isinstance(name, str) or not name:
        raise ExpressionError("env() takes a name, e.g. env('API_URL')")
    value = resolver(name)
    if value is not None:
        return str(value)
    if fallback is not NO_FALLBACK:
        return fallback
    raise ExpressionError(
        f"setting {name} is not set: env({name!r}) reads the environment variable {name}; set it, "
        f"or give a fallback with env({name!r}, '...') or env({name!r}) | default('...')"
    )


def builtin_functions() -> dict[str, Spec]:
    def doc(fn: Any) -> str:
        return (fn.__doc__ or "").strip()

    return {
        "now": Spec("now", now, doc=doc(now), needs_state=True, pure=False),
        "uuid": Spec("uuid", uuid, doc=doc(uuid), pure=False),
        "range": Spec("range", range_, doc=doc(range_), needs_state=True),
        "dict": Spec("dict", dict_, doc=doc(dict_)),
        "env": Spec("env", env, doc=doc(env), needs_state=True, pure=False),
        "secret": Spec("secret", secret, doc=doc(secret), needs_state=True, pure=False),
    }
