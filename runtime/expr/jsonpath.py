"""JSONPath (RFC 9535) over Syncline's JSON values, on top of `jsonpath_rfc9535`.

The library compares numbers only when they are `int` or `float`, so documents holding `Decimal`
(every number Syncline parses) would never match `$[?@.price > 1]`. `DecimalJSONPathEnvironment`
plugs a parser into the library that (1) reads number literals exactly as `Decimal`/`int` and
(2) builds comparison nodes whose ordering treats `Decimal` as a number (and `bool` as not one);
floats met at run time compare through their shortest repr. Nothing of the library is copied.

Paths are compiled from flow files only (never from payloads), once: `PathCompiler` keeps a
bounded cache. An invalid path raises `CompileError` with code SL031.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jsonpath_rfc9535 import JSONPathEnvironment, JSONPathError, JSONPathNodeList
from jsonpath_rfc9535 import filter_expressions as _fx
from jsonpath_rfc9535.parse import Parser as _Parser

from runtime.errors import ExpressionError
from runtime.expr.errors import CompileError, LimitError

__all__ = ["DecimalJSONPathEnvironment", "JSONPath", "PathCompiler"]

_library_compare = _fx._compare


def _norm(value: object) -> object:
    if type(value) is float:
        return Decimal(repr(value))
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _lt(left: object, right: object) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left < right
    if _is_number(left) and _is_number(right):
        return bool(left < right)  # type: ignore[operator]
    return False


def decimal_compare(left: object, operator: str, right: object) -> bool:
    """RFC 9535 comparison where `Decimal` is a number; equality and logic are the library's own."""
    left, right = _norm(left), _norm(right)
    if operator == "<":
        return _lt(left, right)
    if operator == ">":
        return _lt(right, left)
    if operator == "<=":
        return _lt(left, right) or bool(_library_compare(left, "==", right))
    if operator == ">=":
        return _lt(right, left) or bool(_library_compare(left, "==", right))
    return bool(_library_compare(left, operator, right))


class DecimalComparisonExpression(_fx.ComparisonExpression):
    __slots__ = ()

    def evaluate(self, context: Any) -> bool:
        left = self.left.evaluate(context)
        if isinstance(left, JSONPathNodeList) and len(left) == 1:
            left = left[0].value
        right = self.right.evaluate(context)
        if isinstance(right, JSONPathNodeList) and len(right) == 1:
            right = right[0].value
        return decimal_compare(left, self.operator, right)


class DecimalLiteral(_fx.FilterExpressionLiteral[Decimal]):
    __slots__ = ()

    def __str__(self) -> str:
        return str(self.value).lower()


class DecimalParser(_Parser):
    """The library's parser with exact number literals and Decimal-aware comparisons."""

    def parse_integer_literal(self, stream: Any) -> Any:
        literal = super().parse_integer_literal(stream)
        exact = Decimal(stream.current.value)
        if exact.adjusted() <= 400:
            literal.value = int(exact)  # type: ignore[attr-defined]
        return literal

    def parse_float_literal(self, stream: Any) -> Any:
        literal = super().parse_float_literal(stream)
        return DecimalLiteral(literal.token, value=Decimal(stream.current.value))

    def parse_infix_expression(self, stream: Any, left: Any) -> Any:
        expr = super().parse_infix_expression(stream, left)
        if type(expr) is _fx.ComparisonExpression:
            return DecimalComparisonExpression(expr.token, expr.left, expr.operator, expr.right)
        return expr


class DecimalJSONPathEnvironment(JSONPathEnvironment):
    """A `JSONPathEnvironment` for documents whose numbers are `Decimal`."""

    parser_class = DecimalParser


class JSONPath:
    """One compiled path. `find(doc)` → list of matched values; `first(doc)` → first or None."""

    __slots__ = ("_query", "source")

    def __init__(self, source: str, query: Any) -> None:
        self.source = source
        self._query = query

    def __repr__(self) -> str:
        return f"JSONPath({self.source!r})"

    def find(self, document: Any, check: Callable[[], None] | None = None, max_items: int | None = None) -> list[Any]:
        """All matches; `check` (the render's time budget) is called every 16 matches, and more
        than `max_items` matches are refused."""
        try:
            if check is None:
                return [node.value for node in self._query.finditer(document)]
            out: list[Any] = []
            for node in self._query.finditer(document):
                out.append(node.value)
                if not len(out) % 16:
                    check()
                    if max_items is not None and len(out) > max_items:
                        raise LimitError(f"jsonpath {self.source!r}: more than {max_items} matches (the limit)")
            return out
        except JSONPathError as exc:
            raise ExpressionError(f"jsonpath {self.source!r}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"jsonpath {self.source!r}: document nested too deeply") from None

    def locations(self, document: Any) -> list[tuple[str | int, ...]]:
        """The location (keys and indexes from the root) of every match."""
        try:
            return [tuple(node.location) for node in self._query.finditer(document)]
        except (JSONPathError, RecursionError):
            return []

    def first(self, document: Any) -> Any:
        try:
            for node in self._query.finditer(document):
                return node.value
        except JSONPathError as exc:
            raise ExpressionError(f"jsonpath {self.source!r}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"jsonpath {self.source!r}: document nested too deeply") from None
        return None


class PathCompiler:
    """Compiles JSONPath text once and keeps the last `size` paths (thread-safe LRU)."""

    def __init__(self, size: int = 1024) -> None:
        self._env = DecimalJSONPathEnvironment()
        self._size = size
        self._cache: OrderedDict[str, JSONPath] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, path: str) -> JSONPath:
        """Compile `path`; raises `CompileError` (SL031) if it is not RFC 9535 JSONPath."""
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        if not isinstance(path, str):
            raise CompileError(f"a JSONPath must be a string, not {type(path).__name__}", code="SL031")
        try:
            compiled = JSONPath(path, self._env.compile(path))
        except JSONPathError as exc:
            line, col = _position(exc)
            raise CompileError(
                f"invalid JSONPath {path!r}: {_message(exc)}",
                code="SL031",
                line=line,
                col=col,
                hint="JSONPath follows RFC 9535, e.g. $.lines[*].sku or $..items[?@.qty > 1]",
            ) from None
        except (RecursionError, ValueError, OverflowError) as exc:
            raise CompileError(f"invalid JSONPath {path!r}: {exc}", code="SL031") from None
        with self._lock:
            self._cache[path] = compiled
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return compiled


def _message(exc: JSONPathError) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _position(exc: JSONPathError) -> tuple[int, int]:
    token = getattr(exc, "token", None)
    if token is None:
        return 0, 0
    try:
        line, col = token.position()
        return int(line), int(col)
    except Exception:
        return 0, 0
