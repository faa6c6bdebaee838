"""`ExpressionEngine` compiles YAML values, expressions and templates once; `Compiled` renders them.

    engine = ExpressionEngine()
    mapping = engine.compile({"order_ref": "{{ input.id }}",
                              "total": "{{ input.lines | sum_of('qty * unit_price') }}"})
    mapping.render({"input": order})          # → {"order_ref": ..., "total": Decimal(...)}
    mapping.references                         # → {("input", "id"), ("input", "lines")}

A string that is exactly one `{{ expr }}` yields the expression's native value; text around it
makes a string; strings without `{{` or `{%` are literals; dicts and lists compile into one function.
Results are cached by source (bounded LRU). Rendering translates every Python error into
`RenderError` naming the expression and where it sits.

Each source has two compiled variants: the plain one, and the secret-aware one that keeps values
computed from a secret marked (`runtime/expr/taint.py`). An expression that calls `secret()` only
has the secret-aware one; any other runs it when the render context's `Taint` switch is on (a
`secret()` call earlier in the run turned it on), compiled on first use.
"""

from __future__ import annotations

import decimal
import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple

from runtime.errors import ExpressionError, SynclineError
from runtime.expr import ops, taint
from runtime.expr.codegen import CodeGen, Generated, Loc, Ref, single_expression
from runtime.expr.errors import CompileError, LimitError, RenderError
from runtime.expr.limits import Limits
from runtime.expr.parsing import JinjaParser
from runtime.expr.registry import Registry, default_registry
from runtime.expr.secrets import TAINT_KEY


class _Variant(NamedTuple):
    fn: Any
    filename: str
    line_map: dict[int, Loc]


class Compiled:
    """A compiled value, expression or template.

    `render(context)` evaluates it; `source` is what was compiled; `is_constant` is true when the
    result depends on neither the context nor the clock; `references` holds every lookup chain
    rooted at a name (`("steps", "customer", "output")`); `free_names` the roots that come from
    the context (not bound by `for`, `set`, or `item` inside `map_each`).
    """

    __slots__ = (
        "_filename",
        "_fn",
        "_line_map",
        "_taint",
        "_taint_build",
        "free_names",
        "is_constant",
        "kind",
        "name",
        "python",
        "references",
        "source",
    )

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        source: Any,
        generated: Generated,
        fn: Any,
        filename: str,
        taint_build: Any = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.source = source
        self.python = generated.python
        self.references: frozenset[Ref] = generated.references
        self.free_names: frozenset[str] = generated.free_names
        self.is_constant = generated.pure and not generated.free_names
        self._fn = fn
        self._filename = filename
        self._line_map = generated.line_map
        # the secret-aware variant: this one when the source calls secret(), else built on first use
        self._taint: _Variant | None = _Variant(fn, filename, generated.line_map) if taint_build is None else None
        self._taint_build = taint_build

    def __repr__(self) -> str:
        return f"Compiled({self.kind}, {self.name!r})"

    def render(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against `context` (e.g. `{"input": ..., "steps": ...}`); raises `RenderError`."""
        try:
            if TAINT_KEY in context and context[TAINT_KEY].active:
                return self._tainted().fn(context)
            return self._fn(context)
        except Exception as exc:
            raise self._translate(exc) from (exc if isinstance(exc, SynclineError) else None)

    def _tainted(self) -> _Variant:
        variant = self._taint
        if variant is None:
            variant = self._taint = self._taint_build()
        return variant

    def _where(self, tb: TracebackType | None) -> Loc | None:
        found = None
        maps = {self._filename: self._line_map}
        if self._taint is not None:
            maps[self._taint.filename] = self._taint.line_map
        while tb is not None:
            line_map = maps.get(tb.tb_frame.f_code.co_filename)
            if line_map is not None:
                found = line_map.get(tb.tb_lineno, found)
            tb = tb.tb_next
        return found

    def _translate(self, exc: Exception) -> RenderError:
        if isinstance(exc, RenderError):
            return exc
        loc = self._where(exc.__traceback__)
        reason = "expression_limit" if isinstance(exc, LimitError | decimal.Overflow | MemoryError) else "expression"
        if isinstance(exc, ExpressionError):
            message = str(exc)
        elif isinstance(exc, ZeroDivisionError | decimal.DivisionByZero):
            message = "division by zero"
        elif isinstance(exc, decimal.Overflow):
            message = "number too large"
        elif isinstance(exc, decimal.InvalidOperation):
            message = "invalid arithmetic (a number is too large or not defined)"
        elif isinstance(exc, RecursionError):
            message = "data nested too deeply"
        elif isinstance(exc, MemoryError):
            message = "out of memory"
        elif isinstance(exc, CompileError):
            message = f"compile error: {exc}"
        else:
            message = f"{type(exc).__name__}: {exc}"
        if loc is None:
            src = self.source if isinstance(self.source, str) else None
            return RenderError(message, source=src, path=(self.name,) if self.kind == "template" else (), reason=reason)
        return RenderError(message, source=loc.source, path=loc.path, line=loc.line, reason=reason)


class _LRU:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Any, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Compiled | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: Any, value: Compiled) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class ExpressionEngine:
    """Compiles expressions and templates against one allow-list (`registry`) and one set of `limits`."""

    def __init__(self, *, limits: Limits | None = None, registry: Registry | None = None) -> None:
        self.limits = limits or Limits()
        self.registry = registry or default_registry()
        self._parser = JinjaParser()
        self._namespace = ops.namespace(self.limits)
        self._namespace["_L"] = self.limits
        self._namespace["_R"] = self.registry
        self._namespace.update(taint.namespace())
        self._cache = _LRU(self.limits.cache_size)
        self._counter = 0

    def compile(self, value: Any, *, name: str = "<value>") -> Compiled:
        """Compile a YAML value (string, dict, list or scalar) into one function."""
        try:
            key = ("value", name, _freeze(value))
        except RecursionError:
            raise CompileError("value nested too deeply", path=(name,)) from None
        hit = self._cache.get(key)
        if hit is not None:
            return hit

        def generate(secret_aware: bool) -> Generated:
            return self._gen(name, secret_aware).value(value)

        return self._build(key, "value", name, value, generate)

    def compile_expression(self, source: Any, *, name: str = "<expression>") -> Compiled:
        """Compile one expression, bare (`input.total > 100`) or braced (`{{ input.total > 100 }}`)."""
        if not isinstance(source, str):
            return self.compile(source, name=name)
        key = ("expression", name, source)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        stripped = source.strip()
        try:
            if stripped.startswith("{{") and stripped.endswith("}}"):
                node = single_expression(self._parser.template(source, name=name))
                if node is None:
                    raise CompileError("write one expression here, e.g. {{ input.total > 100 }}")
            else:
                node = self._parser.expression(source)

            def generate(secret_aware: bool) -> Generated:
                return self._gen(name, secret_aware).expression(node, source)

            return self._build(key, "expression", name, source, generate)
        except CompileError as exc:
            raise exc.located((name,), source) from None

    def compile_template(self, source: str, name: str = "<template>") -> Compiled:
        """Compile a whole template file (`{% for %}`, `{% if %}`, `{% set %}`, output) rendering to text."""
        key = ("template", name, source)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            tree = self._parser.template(source, name=name)

            def generate(secret_aware: bool) -> Generated:
                return self._gen(name, secret_aware).template(tree, source)

            return self._build(key, "template", name, source, generate)
        except CompileError as exc:
            raise exc.located((name,), source) from None

    def render(self, value: Any, context: Mapping[str, Any], *, name: str = "<value>") -> Any:
        """Compile (cached) and render in one call."""
        return self.compile(value, name=name).render(context)

    def _gen(self, name: str, secret_aware: bool) -> CodeGen:
        return CodeGen(self.registry, self.limits, self._parser, name, taint=secret_aware)

    def _build(self, key: Any, kind: str, name: str, source: Any, generate: Any) -> Compiled:
        generated: Generated = generate(False)
        taint_build = None
        if generated.uses_secret:  # only ever rendered secret-aware
            generated = generate(True)
        else:

            def taint_build() -> _Variant:
                try:
                    return self._exec(kind, name, generate(True))
                except CompileError as exc:
                    raise exc.located((name,), source if isinstance(source, str) else None) from None

        variant = self._exec(kind, name, generated)
        compiled = Compiled(
            kind=kind,
            name=name,
            source=source,
            generated=generated,
            fn=variant.fn,
            filename=variant.filename,
            taint_build=taint_build,
        )
        self._cache.put(key, compiled)
        return compiled

    def _exec(self, kind: str, name: str, generated: Generated) -> _Variant:
        self._counter += 1
        filename = f"<syncline {kind} {self._counter}>"
        namespace = dict(self._namespace)
        namespace.update(generated.namespace)
        try:
            code = compile(generated.python, filename, "exec")
        except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
            raise CompileError(f"too complex to compile ({type(exc).__name__})", path=(name,)) from None
        exec(code, namespace)
        return _Variant(namespace["_render"], filename, generated.line_map)


def _freeze(value: Any) -> Any:
    """A hashable cache key that keeps types apart (1, 1.0, True and '1' are different sources)."""
    if isinstance(value, Mapping):
        return ("d", tuple((_freeze(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("l", tuple(_freeze(v) for v in value))
    if isinstance(value, Decimal):
        return ("n", str(value))
    try:
        hash(value)
    except TypeError:
        return ("?", id(value))
    return (type(value).__name__, value)
