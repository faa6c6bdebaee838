"""The allow-list: which filters, tests and functions expressions may use.

A `Registry` is an immutable value built by `default_registry()` and passed to an engine; nothing
registers itself at import time. Each entry is a `Spec`: the Python function plus how the code
generator must call it (with the render state? is it pure? must its first argument be a literal,
prepared at compile time?).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Kind = Literal["filter", "test", "function"]


@dataclass(frozen=True, slots=True)
class Spec:
    """One allow-listed filter, test or function."""

    name: str
    fn: Callable[..., Any]
    doc: str = ""
    needs_state: bool = False
    """Called as `fn(state, value, *args)`: bounded or time-checked work, or it reads the context."""
    pure: bool = True
    """False for `now()`, `uuid()`, `secret()`, `env()`: the result is never constant."""
    literal_arg: bool = False
    """The first argument must be a literal in the expression (e.g. a JSONPath)."""
    prepare: Callable[[Any], Any] | None = None
    """Applied once at compile time to a literal first argument (compiles a path or a pattern)."""
    inline: bool = False
    """The code generator expands it in place (`map_each`, `sum_of`); `fn` is the fallback."""
    signature: inspect.Signature | None = field(default=None, compare=False)

    def call_signature(self) -> inspect.Signature:
        """The signature seen by the expression (state parameter removed)."""
        sig = self.signature or inspect.signature(self.fn)
        params = list(sig.parameters.values())
        if self.needs_state:
            params = params[1:]
        return sig.replace(parameters=params)


class Registry:
    """Filters, tests and functions by name. Use `extended(...)` to get a new registry with more."""

    def __init__(
        self,
        filters: Mapping[str, Spec],
        tests: Mapping[str, Spec],
        functions: Mapping[str, Spec],
    ) -> None:
        self._tables: dict[Kind, Mapping[str, Spec]] = {
            "filter": MappingProxyType(dict(filters)),
            "test": MappingProxyType(dict(tests)),
            "function": MappingProxyType(dict(functions)),
        }

    @property
    def filters(self) -> Mapping[str, Spec]:
        return self._tables["filter"]

    @property
    def tests(self) -> Mapping[str, Spec]:
        return self._tables["test"]

    @property
    def functions(self) -> Mapping[str, Spec]:
        return self._tables["function"]

    def get(self, kind: Kind, name: str) -> Spec | None:
        return self._tables[kind].get(name)

    def suggest(self, kind: Kind, name: str) -> str | None:
        """The closest known name of that kind, for 'did you mean' hints."""
        close = difflib.get_close_matches(name, list(self._tables[kind]), n=1, cutoff=0.6)
        return close[0] if close else None

    def extended(
        self,
        *,
        filters: Mapping[str, Spec] | None = None,
        tests: Mapping[str, Spec] | None = None,
        functions: Mapping[str, Spec] | None = None,
    ) -> Registry:
        """A new registry with the given entries added (or replaced)."""
        return Registry(
            {**self.filters, **(filters or {})},
            {**self.tests, **(tests or {})},
            {**self.functions, **(functions or {})},
        )


def default_registry() -> Registry:
    """The built-in filters, tests and functions (a fresh value on every call)."""
    from runtime.expr.filters import builtin_filters
    from runtime.expr.functions import builtin_functions
    from runtime.expr.jsonpath import PathCompiler
    from runtime.expr.tests_builtin import builtin_tests

    tests = builtin_tests()
    return Registry(builtin_filters(PathCompiler()), tests, builtin_functions())
