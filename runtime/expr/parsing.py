"""Jinja2 as a parser only: source text → Jinja2 AST, with float literals read as exact `Decimal`.

The environment is an `ImmutableSandboxedEnvironment` (Jinja's own defaults for delimiters,
whitespace control and comments); its code generator and runtime are never used. Jinja's syntax
errors become `CompileError` (SL030) with the line, as does a string literal with a lone surrogate
escape (`"\\ud800"`), which is not Unicode text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TypeVar

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import TOKEN_FLOAT, Lexer, Token
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runtime.expr.errors import CompileError


class _DecimalLexer(Lexer):
    """Jinja's lexer, except float literals become `Decimal` from their source text (`0.1` is exact)."""

    def wrap(
        self, stream: Iterable[tuple[int, str, str]], name: str | None = None, filename: str | None = None
    ) -> Iterator[Token]:
        for item in stream:
            lineno, token, value_str = item
            if token == TOKEN_FLOAT:
                yield Token(lineno, TOKEN_FLOAT, Decimal(value_str.replace("_", "")))  # type: ignore[arg-type]
            else:
                yield from super().wrap(iter((item,)), name, filename)


class _ParseEnvironment(ImmutableSandboxedEnvironment):
    def __init__(self) -> None:
        super().__init__(autoescape=False)
        self._decimal_lexer = _DecimalLexer(self)

    @property
    def lexer(self) -> Lexer:
        return self._decimal_lexer


class JinjaParser:
    """Parses templates and bare expressions. One per engine; parsing is compile-time only."""

    def __init__(self) -> None:
        self._env = _ParseEnvironment()

    def template(self, source: str, name: str | None = None) -> nodes.Template:
        try:
            return _unicode_literals(Parser(self._env, source, name=name).parse(), source)
        except TemplateSyntaxError as exc:
            raise _syntax_error(exc, source) from None
        except RecursionError:
            raise CompileError("template nested too deeply", source=source) from None

    def expression(self, source: str) -> nodes.Expr:
        try:
            parser = Parser(self._env, source, state="variable")
            expr = parser.parse_expression()
            if not parser.stream.eos:
                tok = parser.stream.current
                raise TemplateSyntaxError(f"unexpected {tok.value!r} after the expression", tok.lineno)
            return _unicode_literals(expr, source)
        except TemplateSyntaxError as exc:
            raise _syntax_error(exc, source) from None
        except RecursionError:
            raise CompileError("expression nested too deeply", source=source) from None


def _syntax_error(exc: TemplateSyntaxError, source: str) -> CompileError:
    message = str(exc.message or "syntax error")
    return CompileError(message, code="SL030", line=int(exc.lineno or 0), source=source)


_SURROGATE = re.compile("[\ud800-\udfff]")
_Tree = TypeVar("_Tree", bound=nodes.Node)


def _unicode_literals(tree: _Tree, source: str) -> _Tree:
    """String literals as Unicode text: a `\\uD83D\\uDE00` pair of escapes becomes its one character
    (Jinja decodes each escape alone), and a lone surrogate escape is refused (SL030): no store,
    HTTP body or log could encode it."""
    for const in tree.find_all(nodes.Const):
        value = const.value
        if isinstance(value, str) and _SURROGATE.search(value):
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
            if _SURROGATE.search(value):
                raise CompileError(
                    "a string literal holds a lone surrogate escape (\\ud800-\\udfff outside a pair): not Unicode text",
                    code="SL030",
                    line=int(const.lineno or 0),
                    source=source,
                )
            const.value = value
    return tree
