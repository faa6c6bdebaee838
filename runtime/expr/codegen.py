"""Jinja2 AST → Python source → one compiled function over JSON values.

The generator emits code only for the node types it handles explicitly (anything else is SL030).
Nothing from the source text is pasted into the generated code: names become mangled variables
(`_n0` for context names, `_v3` for loop and `set` variables), every constant (keys, strings,
numbers, prepared JSONPaths) is a global of the generated function (`_c7`), and filters, tests and
functions are globals bound to the allow-listed Python functions (`_f2`). The function's globals
hold no builtins, only the helpers from `ops.namespace`.

A YAML value (a dict of mapping fields, say) becomes ONE function returning a dict display whose
leaves are the expressions, so rendering a mapping is plain dictionary lookups and helper calls.
Attribute lookups are inlined as `(x.get(k) if type(x) is dict else _ga(x, k))`.

Every leaf starts on its own generated line; `line_map` maps generated lines back to the YAML path,
the source string and its line, so a failing render can say which expression failed.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from jinja2 import nodes

from runtime.expr.errors import CompileError, Path, SandboxViolation, format_path
from runtime.expr.limits import Limits
from runtime.expr.parsing import JinjaParser
from runtime.expr.registry import Kind, Registry, Spec

Ref = tuple[str | int, ...]

_MARK = "\x00"
_IDENT = re.compile(r"^_[a-z]+\d*$|^ctx$")
_INDENT = "    "

_BINOPS: dict[type[nodes.Node], str] = {
    nodes.Add: "_add",
    nodes.Sub: "_sub",
    nodes.Mul: "_mul",
    nodes.Div: "_div",
    nodes.FloorDiv: "_fdiv",
    nodes.Mod: "_mod",
    nodes.Pow: "_pow",
}
_CMPOPS = {"lt": "_lt", "lteq": "_le", "gt": "_gt", "gteq": "_ge"}

_STATEMENT_NAMES: dict[type[nodes.Node], str] = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.Block: "{% block %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.ExprStmt: "{% do %}",
    nodes.Continue: "{% continue %}",
    nodes.Break: "{% break %}",
    nodes.Scope: "a scope block",
    nodes.OverlayScope: "an overlay scope",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
}


class Loc(NamedTuple):
    """Where a generated line comes from: YAML path (or template name), source string, line in it."""

    path: Path
    source: str
    line: int


class Generated(NamedTuple):
    """The result of code generation, ready for `compile()`."""

    python: str
    namespace: dict[str, Any]
    line_map: dict[int, Loc]
    references: frozenset[Ref]
    free_names: frozenset[str]
    pure: bool
    uses_secret: bool = False


class _Scope:
    """Names bound by the template (`set`, loop targets, `item`) → generated variable names.

    `fields_of` makes every other bare name a field of that variable (inside `sum_of('qty * price')`).
    """

    __slots__ = ("fields_of", "parent", "vars")

    def __init__(self, parent: _Scope | None = None, fields_of: str | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, str] = {}
        self.fields_of = fields_of

    def find(self, name: str) -> tuple[str, str] | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return "var", scope.vars[name]
            if scope.fields_of is not None:
                return "field", scope.fields_of
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        out: list[str] = []
        scope: _Scope | None = self
        while scope is not None:
            for v in scope.vars.values():
                if v not in out:
                    out.append(v)
            if scope.fields_of is not None and scope.fields_of not in out:
                out.append(scope.fields_of)
            scope = scope.parent
        return sorted(out)


class CodeGen:
    """Generates one function. Use `value()`, `expression()` or `template()` once per instance."""

    def __init__(
        self, registry: Registry, limits: Limits, parser: JinjaParser, name: str, *, taint: bool = False
    ) -> None:
        self.registry = registry
        self.taint = taint
        """Emit the secret-aware variant: every filter, function and text operation goes through
        `runtime/expr/taint.py` so values computed from a secret stay marked."""
        self.uses_secret = False
        self.limits = limits
        self.parser = parser
        self.name = name
        self._ids = itertools.count()
        self._globals: dict[str, Any] = {}
        self._const_ids: dict[tuple[type, Any], str] = {}
        self._fn_ids: dict[int, str] = {}
        self._free: dict[str, str] = {}
        self._locs: list[Loc] = []
        self._marker = ""
        self._path: Path = ()
        self._defs: list[str] = []
        self._no_walrus = 0
        self._loop_depth = 0
        self.refs: set[Ref] = set()
        self.free_names: set[str] = set()
        self.needs_state = False
        self.pure = True

    # ------------------------------------------------------------------ entry points

    def value(self, value: Any) -> Generated:
        """A YAML value: strings are templates/expressions/literals; dicts and lists recurse."""
        code = self._value(value, _Scope(), (), 0)
        return self._finish([f"{_INDENT}return ({code}\n)"])

    def expression(self, node: nodes.Expr, source: str) -> Generated:
        """One bare expression (a `when:` condition) evaluating to its native value."""
        code = self._leaf(node, _Scope(), (), source)
        return self._finish([f"{_INDENT}return ({code}\n)"])

    def template(self, tree: nodes.Template, source: str) -> Generated:
        """A whole template file rendering to text."""
        self.needs_state = True
        path: Path = (self.name,)
        scope = _Scope()
        lines = self._init_assigned(tree.body, scope, 1, path, source)
        lines.append(f"{_INDENT}_rs.push()")
        lines += self._stmts(tree.body, scope, 1, path, source)
        lines.append(f"{_INDENT}return _rs.pop()")
        return self._finish(lines)

    # ------------------------------------------------------------------ plumbing

    def _tmp(self, prefix: str) -> str:
        return f"_{prefix}{next(self._ids)}"

    def const(self, value: Any) -> str:
        """A global name holding `value` (never its repr in the source)."""
        if value is None or value is True or value is False:
            return repr(value)  # the keywords None/True/False
        try:
            key: tuple[type, Any] = (type(value), str(value) if type(value) is Decimal else value)
            hash(key)
        except TypeError:
            key = (type(value), id(value))
        name = self._const_ids.get(key)
        if name is None:
            name = self._tmp("c")
            self._const_ids[key] = name
            self._globals[name] = value
        return name

    def _fn(self, spec: Spec) -> str:
        name = self._fn_ids.get(id(spec.fn))
        if name is None:
            name = self._tmp("f")
            self._fn_ids[id(spec.fn)] = name
            self._globals[name] = spec.fn
        return name

    def _loc(self, loc: Loc) -> str:
        self._locs.append(loc)
        return f"{_MARK}{len(self._locs) - 1}{_MARK}"

    def _finish(self, body: list[str]) -> Generated:
        header = ["def _render(ctx):"]
        for name, var in self._free.items():
            header.append(f"{_INDENT}{var} = ctx.get({self.const(name)})")
        if self.needs_state:
            header.append(f"{_INDENT}_rs = _RS(ctx, _L, _R)")
            header.append(f"{_INDENT}_w = _rs.write")
        header += self._defs
        text = "\n".join(header + body)
        out: list[str] = []
        line_map: dict[int, Loc] = {}
        current: Loc | None = None
        for i, line in enumerate(text.split("\n"), start=1):
            if line.startswith(_MARK):
                end = line.index(_MARK, 1)
                current = self._locs[int(line[1:end])]
                line = line[end + 1 :]
            if current is not None:
                line_map[i] = current
            out.append(line)
        return Generated(
            "\n".join(out) + "\n",
            dict(self._globals),
            line_map,
            frozenset(self.refs),
            frozenset(self.free_names),
            self.pure,
            self.uses_secret,
        )

    def _error(
        self,
        message: str,
        node: nodes.Node | None,
        *,
        code: str = "SL030",
        hint: str | None = None,
        sandbox: bool = False,
    ) -> CompileError:
        cls = SandboxViolation if sandbox else CompileError
        return cls(message, code=code, line=getattr(node, "lineno", 0) or 0, hint=hint)

    def _unknown(self, kind: Kind, name: str, node: nodes.Node, *, sandbox: bool = False) -> CompileError:
        close = self.registry.suggest(kind, name)
        call = f"{name}()" if kind == "function" else name
        hint = f"did you mean {close!r}?" if close else f"see the list of {kind}s in the reference"
        return self._error(f"unknown {kind} {call!r}", node, code="SL033", hint=hint, sandbox=sandbox)

    # ------------------------------------------------------------------ YAML values

    def _value(self, value: Any, scope: _Scope, path: Path, depth: int) -> str:
        if depth > self.limits.max_depth:
            raise CompileError("value nested too deeply", path=path)
        if isinstance(value, str):
            return self._string(value, scope, path)
        if value is None or isinstance(value, bool):
            return repr(value)
        if isinstance(value, int | Decimal):
            return self.const(value)
        if isinstance(value, float):
            return self.const(Decimal(repr(value)))
        if isinstance(value, dt.datetime | dt.date):
            return self.const(value.isoformat())
        if isinstance(value, Mapping):
            items = []
            for k, v in value.items():
                key = _key(k, path)
                items.append(f"{self.const(key)}: {self._value(v, scope, (*path, key), depth + 1)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(value, list | tuple):
            parts = [self._value(v, scope, (*path, i), depth + 1) for i, v in enumerate(value)]
            return "[" + ", ".join(parts) + "]"
        raise CompileError(f"cannot use a {type(value).__name__} here", path=path)

    def _string(self, text: str, scope: _Scope, path: Path) -> str:
        if "{{" not in text and "{%" not in text:
            return self.const(text)
        try:
            tree = self.parser.template(text, name=format_path(path) or self.name)
            body = tree.body
            if all(type(n) is nodes.Output for n in body):
                single = single_expression(tree)
                if single is not None:
                    return self._leaf(single, scope, path, text)
                items = [child for n in body for child in n.nodes]  # type: ignore[attr-defined]
                if all(type(c) is nodes.TemplateData for c in items):
                    return self.const("".join(c.data for c in items))
                parts = []
                for c in items:
                    if type(c) is nodes.TemplateData:
                        parts.append(self.const(c.data))
                    else:
                        parts.append(self._text(self._leaf(c, scope, path, text)))
                return self._join("text", "_cat", parts)
            return self._nested_template(tree, scope, path, text)
        except CompileError as exc:
            raise exc.located(path, text) from None

    def _leaf(self, node: nodes.Node, scope: _Scope, path: Path, source: str) -> str:
        """An expression on its own generated line, tagged with where it came from."""
        outer, outer_path = self._marker, self._path
        mark = self._loc(Loc(path, source, node.lineno))
        self._marker, self._path = mark, path
        try:
            code = self.expr(node, scope, 0)
        finally:
            self._marker, self._path = outer, outer_path
        return f"\n{mark}{code}" + (f"\n{outer}" if outer else "")

    def _nested_template(self, tree: nodes.Template, scope: _Scope, path: Path, source: str) -> str:
        """A string value with `{% %}` statements: a local function writing to the render state."""
        self.needs_state = True
        fname = self._tmp("t")
        params = scope.visible()
        inner = _Scope(scope)
        lines = [f"{_INDENT}def {fname}({', '.join(params)}):"]
        lines += self._init_assigned(tree.body, inner, 2, path, source)
        lines.append(f"{_INDENT * 2}_rs.push()")
        lines += self._stmts(tree.body, inner, 2, path, source)
        lines.append(f"{_INDENT * 2}return _rs.pop()")
        self._defs += lines
        return f"{fname}({', '.join(params)})"

    # ------------------------------------------------------------------ statements (templates)

    def _stmts(self, body: list[nodes.Node], scope: _Scope, ind: int, path: Path, source: str) -> list[str]:
        out: list[str] = []
        for node in body:
            out += self._stmt(node, scope, ind, path, source)
        if not out:
            out.append(_INDENT * ind + "pass")
        return out

    def _stmt(self, node: nodes.Node, scope: _Scope, ind: int, path: Path, source: str) -> list[str]:
        mark = self._loc(Loc(path, source, node.lineno))
        outer, self._marker = self._marker, mark
        self._path = path
        pad = _INDENT * ind
        try:
            t = type(node)
            if t is nodes.Output:
                lines = []
                for child in node.nodes:  # type: ignore[attr-defined]
                    if type(child) is nodes.TemplateData:
                        lines.append(f"{mark}{pad}_w({self.const(child.data)})")
                    else:
                        cmark = self._loc(Loc(path, source, child.lineno))
                        self._marker = cmark
                        lines.append(f"{cmark}{pad}_w({self._text(self.expr(child, scope, 0))})")
                        self._marker = mark
                return lines
            if t is nodes.If:
                return self._if(node, scope, ind, path, source, mark)  # type: ignore[arg-type]
            if t is nodes.For:
                return self._for(node, scope, ind, path, source, mark)  # type: ignore[arg-type]
            if t is nodes.Assign:
                target = self._assign_target(node.target, scope)  # type: ignore[attr-defined]
                value = self.expr(node.node, scope, 0)  # type: ignore[attr-defined]
                return [f"{mark}{pad}{target[0]} = {_unpacked(value, target[1])}"]
            if t is nodes.AssignBlock:
                if node.filter is not None:  # type: ignore[attr-defined]
                    raise self._error("a filter on {% set %} blocks is not supported; filter the variable", node)
                target = self._assign_target(node.target, scope)  # type: ignore[attr-defined]
                if target[1]:
                    raise self._error("{% set %} blocks assign to one name", node)
                lines = [f"{mark}{pad}_rs.push()"]
                lines += self._stmts(node.body, scope, ind, path, source)  # type: ignore[attr-defined]
                lines.append(f"{mark}{pad}{target[0]} = _rs.pop()")
                return lines
            what = _STATEMENT_NAMES.get(t, type(node).__name__)
            raise self._error(
                f"{what} is not supported in Syncline templates",
                node,
                hint="templates may use {% for %}, {% if %}, {% set %} and {{ output }}",
            )
        finally:
            self._marker = outer

    def _if(self, node: nodes.If, scope: _Scope, ind: int, path: Path, source: str, mark: str) -> list[str]:
        pad = _INDENT * ind
        lines = [f"{mark}{pad}if {self.expr(node.test, scope, 0)}:"]
        lines += self._stmts(node.body, scope, ind + 1, path, source)
        for elif_ in node.elif_:
            emark = self._loc(Loc(path, source, elif_.lineno))
            lines.append(f"{emark}{pad}elif {self.expr(elif_.test, scope, 0)}:")
            lines += self._stmts(elif_.body, scope, ind + 1, path, source)
        if node.else_:
            lines.append(f"{mark}{pad}else:")
            lines += self._stmts(node.else_, scope, ind + 1, path, source)
        return lines

    def _for(self, node: nodes.For, scope: _Scope, ind: int, path: Path, source: str, mark: str) -> list[str]:
        if node.recursive:
            raise self._error("recursive loops are not supported", node)
        pad, pad1 = _INDENT * ind, _INDENT * (ind + 1)
        seq, item, idx = self._tmp("s"), self._tmp("v"), self._tmp("i")
        lines = [f"{mark}{pad}{seq} = {self._text_op('for', '_itf', [self.expr(node.iter, scope, 0)])}"]
        body_scope = _Scope(scope)
        unpack = self._bind_target(node.target, body_scope, item)
        if node.test is not None:
            kept = self._tmp("k")
            lines.append(f"{mark}{pad}{kept} = []")
            lines.append(f"{mark}{pad}for {item} in {seq}:")
            lines += [f"{mark}{pad1}{u}" for u in unpack]
            lines.append(f"{mark}{pad1}if {self.expr(node.test, body_scope, 0)}:")
            lines.append(f"{mark}{pad1}{_INDENT}{kept}.append({item})")
            lines.append(f"{mark}{pad}{seq} = {kept}")
        lines.append(f"{mark}{pad}for {idx}, {item} in _enum({seq}):")
        lines.append(f"{mark}{pad1}_rs.check()")
        lines += [f"{mark}{pad1}{u}" for u in unpack]
        if _uses_name(node.body, "loop"):
            loop_var = self._tmp("l")
            body_scope.vars["loop"] = loop_var
            lines.append(f"{mark}{pad1}{loop_var} = _loop({idx}, {seq})")
        lines += self._init_assigned(node.body, body_scope, ind + 1, path, source)
        self._loop_depth += 1
        try:
            lines += self._stmts(node.body, body_scope, ind + 1, path, source)
        finally:
            self._loop_depth -= 1
        if node.else_:
            lines.append(f"{mark}{pad}if not {seq}:")
            lines += self._stmts(node.else_, scope, ind + 1, path, source)
        return lines

    def _bind_target(self, target: nodes.Node, scope: _Scope, item: str) -> list[str]:
        if type(target) is nodes.Name:
            _check_name(target.name, target)
            scope.vars[target.name] = item
            return []
        if type(target) is nodes.Tuple and all(type(n) is nodes.Name for n in target.items):
            names = []
            for n in target.items:
                _check_name(n.name, n)  # type: ignore[attr-defined]
                var = self._tmp("v")
                scope.vars[n.name] = var  # type: ignore[attr-defined]
                names.append(var)
            return [f"{', '.join(names)}, = _unp({item}, {len(names)})"]
        raise self._error("loop targets must be names, e.g. {% for k, v in x | items %}", target)

    def _assign_target(self, target: nodes.Node, scope: _Scope) -> tuple[str, int]:
        """`{% set x = ... %}` → (variable, 0); `{% set a, b = ... %}` → ('_v1, _v2,', 2)."""
        if type(target) is nodes.Name:
            _check_name(target.name, target)
            return scope.vars[target.name], 0
        if type(target) is nodes.Tuple and all(type(n) is nodes.Name for n in target.items):
            names = [scope.vars[n.name] for n in target.items]  # type: ignore[attr-defined]
            return ", ".join(names) + ",", len(names)
        raise self._error("{% set %} assigns to names only (namespace attributes are not supported)", target)

    def _init_assigned(self, body: list[nodes.Node], scope: _Scope, ind: int, path: Path, source: str) -> list[str]:
        """Variables `set` in this scope start as the outer value (or the context's) until assigned."""
        lines = []
        for name in _assigned_names(body):
            if name in scope.vars:
                continue
            var = self._tmp("v")
            found = scope.find(name)
            if found is None:
                init = f"ctx.get({self.const(name)})"
            elif found[0] == "var":
                init = found[1]
            else:
                init = self._lookup(found[1], [name])
            scope.vars[name] = var
            lines.append(f"{_INDENT * ind}{var} = {init}")
        return lines

    # ------------------------------------------------------------------ expressions

    def expr(self, node: nodes.Node, scope: _Scope, depth: int) -> str:
        if depth > self.limits.max_depth:
            raise self._error(f"expression nested more than {self.limits.max_depth} levels deep", node)
        handler = _EXPR_HANDLERS.get(type(node))
        if handler is None:
            raise self._error(f"{_describe(node)} is not supported in Syncline expressions", node)
        return handler(self, node, scope, depth + 1)

    def _args(self, args: Sequence[nodes.Node], scope: _Scope, depth: int) -> list[str]:
        return [self.expr(a, scope, depth) for a in args]

    def _const(self, node: nodes.Const, scope: _Scope, depth: int) -> str:
        value = node.value
        if isinstance(value, float):
            value = Decimal(repr(value))
        if not isinstance(value, str | int | Decimal | bool | type(None)):
            raise self._error(f"unsupported literal {type(value).__name__}", node)
        return self.const(value)

    def _list(self, node: nodes.List | nodes.Tuple, scope: _Scope, depth: int) -> str:
        return "[" + ", ".join(self._args(node.items, scope, depth)) + "]"

    def _dict(self, node: nodes.Dict, scope: _Scope, depth: int) -> str:
        items = [f"{self.expr(p.key, scope, depth)}: {self.expr(p.value, scope, depth)}" for p in node.items]
        return "{" + ", ".join(items) + "}"

    def _condexpr(self, node: nodes.CondExpr, scope: _Scope, depth: int) -> str:
        test = self.expr(node.test, scope, depth)
        yes = self.expr(node.expr1, scope, depth)
        no = self.expr(node.expr2, scope, depth) if node.expr2 is not None else "None"
        return f"({yes} if {test} else {no})"

    def _binop(self, node: nodes.BinExpr, scope: _Scope, depth: int) -> str:
        left, right = self.expr(node.left, scope, depth), self.expr(node.right, scope, depth)
        t = type(node)
        if t is nodes.And:
            return f"({left} and {right})"
        if t is nodes.Or:
            return f"({left} or {right})"
        if self.taint and t in (nodes.Add, nodes.Mul):
            return self._join("+" if t is nodes.Add else "*", _BINOPS[t], [left, right])
        return f"{_BINOPS[t]}({left}, {right})"

    def _unary(self, node: nodes.UnaryExpr, scope: _Scope, depth: int) -> str:
        t = type(node)
        if t is nodes.Not:
            return f"(not {self.expr(node.node, scope, depth)})"
        inner = node.node
        if type(inner) is nodes.Const and type(inner.value) in (int, Decimal, float):
            value = Decimal(repr(inner.value)) if type(inner.value) is float else inner.value
            return self.const(-value if t is nodes.Neg else value)
        return f"{'_neg' if t is nodes.Neg else '_pos'}({self.expr(inner, scope, depth)})"

    def _concat(self, node: nodes.Concat, scope: _Scope, depth: int) -> str:
        return self._join("~", "_cc", self._args(node.nodes, scope, depth))

    def _compare(self, node: nodes.Compare, scope: _Scope, depth: int) -> str:
        left = self.expr(node.expr, scope, depth)
        parts = []
        for i, operand in enumerate(node.ops):
            right = self.expr(operand.expr, scope, depth)
            nxt = right
            if i < len(node.ops) - 1 and not self._no_walrus:
                tmp = self._tmp("t")
                right, nxt = f"({tmp} := {right})", tmp
            op = operand.op
            if op == "eq":
                parts.append(f"_eq({left}, {right})")
            elif op == "ne":
                parts.append(f"(not _eq({left}, {right}))")
            elif op == "in":
                parts.append(f"_in({left}, {right})")
            elif op == "notin":
                parts.append(f"(not _in({left}, {right}))")
            elif op in _CMPOPS:
                parts.append(f"{_CMPOPS[op]}({left}, {right})")
            else:
                raise self._error(f"unsupported comparison {op!r}", node)
            left = nxt
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    # lookups ---------------------------------------------------------------

    def _chain(self, node: nodes.Node) -> tuple[nodes.Name, list[str | int]] | None:
        """`a.b['c'][0]` → (Name a, ['b', 'c', 0]); None if the chain is not rooted at a name."""
        keys: list[str | int] = []
        while True:
            t = type(node)
            if t is nodes.Getattr:
                _check_key(node.attr, node)  # type: ignore[attr-defined]
                keys.append(node.attr)  # type: ignore[attr-defined]
                node = node.node  # type: ignore[attr-defined]
            elif t is nodes.Getitem and type(node.arg) is nodes.Const and type(node.arg.value) in (str, int):  # type: ignore[attr-defined]
                key = node.arg.value  # type: ignore[attr-defined]
                _check_key(key, node)
                keys.append(key)
                node = node.node  # type: ignore[attr-defined]
            elif t is nodes.Name:
                return node, keys[::-1]  # type: ignore[return-value]
            else:
                return None

    def _root(self, node: nodes.Name, scope: _Scope) -> tuple[str, list[str | int], bool]:
        """A name → (code of its value, keys to look up first, bound?)."""
        name = node.name
        _check_name(name, node)
        found = scope.find(name)
        if found is not None:
            kind, var = found
            return (var, [], True) if kind == "var" else (var, [name], True)
        free = self._free.get(name)
        if free is None:
            free = self._tmp("n")
            self._free[name] = free
        return free, [], False

    def _record(self, name: str, keys: list[str | int], bound: bool) -> None:
        self.refs.add((name, *keys))
        if not bound:
            self.free_names.add(name)

    def _lookup(self, base: str, keys: list[str | int]) -> str:
        code, simple = base, bool(_IDENT.match(base))
        for key in keys:
            c = self.const(key)
            if type(key) is int:
                code = self._text_op("index", "_gi", [code, c])
            elif simple:
                code = f"({code}.get({c}) if _ty({code}) is _dict else _ga({code}, {c}))"
            elif not self._no_walrus:
                t = self._tmp("t")
                code = f"({t}.get({c}) if _ty({t} := {code}) is _dict else _ga({t}, {c}))"
            else:
                code = f"_ga({code}, {c})"
            simple = False
        return code

    def _name(self, node: nodes.Name, scope: _Scope, depth: int) -> str:
        if node.ctx != "load":
            raise self._error("cannot assign here", node)
        base, keys, bound = self._root(node, scope)
        self._record(node.name, [], bound)
        return self._lookup(base, keys)

    def _getattr(self, node: nodes.Getattr | nodes.Getitem, scope: _Scope, depth: int) -> str:
        chain = self._chain(node)
        if chain is not None:
            root, keys = chain
            base, prefix, bound = self._root(root, scope)
            self._record(root.name, keys, bound)
            return self._lookup(base, prefix + keys)
        if type(node) is nodes.Getattr:
            _check_key(node.attr, node)
            return self._lookup(self.expr(node.node, scope, depth), [node.attr])
        assert type(node) is nodes.Getitem
        arg = node.arg
        base = self.expr(node.node, scope, depth)
        if type(arg) is nodes.Slice:
            parts = [self.expr(p, scope, depth) if p is not None else "None" for p in (arg.start, arg.stop, arg.step)]
            return self._text_op("slice", "_sl", [base, *parts])
        if type(arg) is nodes.Const and type(arg.value) in (str, int):
            _check_key(arg.value, node)
            return self._lookup(base, [arg.value])
        return self._text_op("index", "_gi", [base, self.expr(arg, scope, depth)])

    # calls, filters, tests -------------------------------------------------

    def _call(self, node: nodes.Call, scope: _Scope, depth: int) -> str:
        target = node.node
        if type(target) is nodes.Name:
            _check_name(target.name, target)
            spec = self.registry.get("function", target.name)
            if spec is None:
                raise self._unknown("function", target.name, node, sandbox=True)
            if target.name == "secret":
                self.uses_secret = True
            return self._apply("function", spec, None, node, scope, depth)
        if type(target) is nodes.Getattr:
            _check_key(target.attr, target)
            attr = target.attr
            hint = (
                f"use the filter instead: x | {attr}"
                if self.registry.get("filter", attr)
                else "use a filter, e.g. x | upper; methods of values cannot be called"
            )
            raise self._error(f"method calls such as .{attr}() are not allowed", node, hint=hint, sandbox=True)
        raise self._error("only allow-listed functions can be called", node, sandbox=True)

    def _filter(self, node: nodes.Filter, scope: _Scope, depth: int) -> str:
        name = node.name
        if name in ("default", "d"):
            node = _unset_setting_is_undefined(node)
        if node.node is None:
            raise self._error("filter blocks are not supported", node)
        if name in ("attr", "format", "xmlattr"):
            raise self._error(
                f"the {name!r} filter is not available: expressions cannot reach Python attributes or format strings",
                node,
                code="SL033",
                sandbox=True,
                hint="look keys up with x.key or x['key']; build text with ~ or a template",
            )
        spec = self.registry.get("filter", name)
        if spec is None:
            raise self._unknown("filter", name, node)
        if spec.inline:
            if name == "sum_of":
                return self._sum_of(node, scope, depth)
            if name == "map_each":
                return self._map_each(node, scope, depth)
        value = self.expr(node.node, scope, depth)
        return self._apply("filter", spec, value, node, scope, depth)

    def _test(self, node: nodes.Test, scope: _Scope, depth: int) -> str:
        name = node.name
        if name in ("defined", "undefined") and not node.args and not node.kwargs:
            code = self._defined(node.node, scope, depth)
            if code is not None:
                return code if name == "defined" else f"(not {code})"
        spec = self.registry.get("test", name)
        if spec is None:
            raise self._unknown("test", name, node)
        return self._apply("test", spec, self.expr(node.node, scope, depth), node, scope, depth)

    def _defined(self, target: nodes.Node, scope: _Scope, depth: int) -> str | None:
        chain = self._chain(target)
        if chain is None:
            return None
        root, keys = chain
        base, prefix, bound = self._root(root, scope)
        self._record(root.name, keys, bound)
        keys = prefix + keys
        if not keys:
            return "True" if bound else f"({self.const(root.name)} in ctx)"
        return f"_has({self._lookup(base, keys[:-1])}, {self.const(keys[-1])})"

    def _apply(self, kind: Kind, spec: Spec, value: str | None, node: Any, scope: _Scope, depth: int) -> str:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise self._error("*args and **kwargs are not supported", node)
        args = list(node.args)
        kwargs = list(node.kwargs)
        try:
            placeholders = [None] * (len(args) + (value is not None))
            spec.call_signature().bind(*placeholders, **{kw.key: None for kw in kwargs})
        except TypeError as exc:
            raise self._error(f"{kind} {spec.name!r}: {exc}", node, hint=f"usage: {_usage(spec, kind)}") from None
        codes = [] if value is None else [value]
        for i, arg in enumerate(args):
            if i == 0 and (spec.literal_arg or spec.prepare is not None):
                if type(arg) is nodes.Const:
                    prepared = arg.value
                    if spec.prepare is not None:
                        try:
                            prepared = spec.prepare(prepared)
                        except CompileError as exc:
                            exc.line, exc.col = node.lineno, 0
                            raise
                    codes.append(self.const(prepared))
                    continue
                if spec.literal_arg:
                    raise self._error(f"{spec.name} takes a literal (quoted) first argument", node)
            codes.append(self.expr(arg, scope, depth))
        if kwargs:
            pairs = [f"{self.const(kw.key)}: {self.expr(kw.value, scope, depth)}" for kw in kwargs]
            codes.append("**{" + ", ".join(pairs) + "}")
        if spec.needs_state:
            self.needs_state = True
            codes.insert(0, "_rs")
        if not spec.pure:
            self.pure = False
        if self.taint and kind != "test" and spec.name not in _KEEPS_MARKS:
            wrapper = "_Tfn" if kind == "function" else "_Tfs" if spec.needs_state else "_Tf"
            return f"{wrapper}({self.const(spec.name)}, {self._fn(spec)}, {', '.join(codes)})"
        return f"{self._fn(spec)}({', '.join(codes)})"

    # secret-aware variant ----------------------------------------------------

    def _text(self, code: str) -> str:
        """A value rendered as text (`_s`), keeping its secret mark in the secret-aware variant."""
        return f"_Tfn({self.const('text')}, _s, {code})" if self.taint else f"_s({code})"

    def _join(self, what: str, helper: str, parts: list[str]) -> str:
        if self.taint:
            return f"_Tj({self.const(what)}, {helper}, {', '.join(parts)})"
        return f"{helper}({', '.join(parts)})"

    def _text_op(self, what: str, helper: str, args: list[str]) -> str:
        if self.taint:
            return f"_Tx({self.const(what)}, {helper}, {', '.join(args)})"
        return f"{helper}({', '.join(args)})"

    # inline list helpers ---------------------------------------------------

    def _items_code(self, node: nodes.Filter, scope: _Scope, depth: int, what: str) -> str:
        self._no_walrus += 1
        try:
            seq = self.expr(node.node, scope, depth)  # type: ignore[arg-type]
        finally:
            self._no_walrus -= 1
        # the render's time budget is checked before the loop and every few items of a long list
        self.needs_state = True
        return f"_itlc(_rs, {seq}, {self.const(what)})"

    def _literal_arg(self, node: nodes.Filter, what: str, example: str) -> nodes.Node:
        if len(node.args) != 1 or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise self._error(f"{what} takes exactly one argument, e.g. {example}", node)
        return node.args[0]

    def _sum_of(self, node: nodes.Filter, scope: _Scope, depth: int) -> str:
        arg = self._literal_arg(node, "sum_of", "lines | sum_of('qty * unit_price')")
        if type(arg) is not nodes.Const or not isinstance(arg.value, str):
            raise self._error("sum_of takes a quoted expression, e.g. sum_of('qty * unit_price')", node)
        source = arg.value
        inner_src = _strip_braces(source)
        try:
            inner = self.parser.expression(inner_src)
        except CompileError as exc:
            raise self._error(f"in sum_of({source!r}): {exc.message}", node) from None
        items = self._items_code(node, scope, depth, "sum_of")
        var = self._tmp("v")
        inner_scope = _Scope(scope, fields_of=var)
        inner_scope.vars["item"] = var
        outer = self._marker
        mark = self._loc(Loc((*self._path, "sum_of"), source, 1))
        self._marker = mark
        self._loop_depth += 1
        try:
            elem = self.expr(inner, inner_scope, depth)
        finally:
            self._loop_depth -= 1
            self._marker = outer
        restore = f"\n{outer}" if outer else ""
        return f"_sum([\n{mark}{elem}{restore} for {var} in {items}], {self.const('sum_of')})"

    def _map_each(self, node: nodes.Filter, scope: _Scope, depth: int) -> str:
        arg = self._literal_arg(node, "map_each", "lines | map_each({'sku': '{{ item.sku }}'})")
        try:
            spec = _literal(arg)
        except ValueError:
            raise self._error(
                "map_each takes a literal object of templates, e.g. map_each({'sku': '{{ item.sku }}'})", node
            ) from None
        items = self._items_code(node, scope, depth, "map_each")
        var = self._tmp("v")
        inner_scope = _Scope(scope)
        inner_scope.vars["item"] = var
        outer, outer_path = self._marker, self._path
        self._loop_depth += 1
        try:
            elem = self._value(spec, inner_scope, (*self._path, "map_each"), depth)
        except CompileError as exc:
            exc.line = node.lineno
            raise
        finally:
            self._loop_depth -= 1
            self._marker, self._path = outer, outer_path
        restore = f"\n{outer}" if outer else ""
        return f"[{elem}{restore} for {var} in {items}]"


# Filters and functions whose result is one of their arguments or a container of them, unchanged:
# the items keep their own marks (wrapping them would mark plain data next to a secret).
_KEEPS_MARKS = frozenset({"default", "d", "dict", "secret"})

_EXPR_HANDLERS: dict[type[nodes.Node], Callable[[CodeGen, Any, _Scope, int], str]] = {
    nodes.Const: CodeGen._const,
    nodes.List: CodeGen._list,
    nodes.Tuple: CodeGen._list,
    nodes.Dict: CodeGen._dict,
    nodes.CondExpr: CodeGen._condexpr,
    nodes.Add: CodeGen._binop,
    nodes.Sub: CodeGen._binop,
    nodes.Mul: CodeGen._binop,
    nodes.Div: CodeGen._binop,
    nodes.FloorDiv: CodeGen._binop,
    nodes.Mod: CodeGen._binop,
    nodes.Pow: CodeGen._binop,
    nodes.And: CodeGen._binop,
    nodes.Or: CodeGen._binop,
    nodes.Not: CodeGen._unary,
    nodes.Neg: CodeGen._unary,
    nodes.Pos: CodeGen._unary,
    nodes.Concat: CodeGen._concat,
    nodes.Compare: CodeGen._compare,
    nodes.Name: CodeGen._name,
    nodes.Getattr: CodeGen._getattr,
    nodes.Getitem: CodeGen._getattr,
    nodes.Call: CodeGen._call,
    nodes.Filter: CodeGen._filter,
    nodes.Test: CodeGen._test,
}


# ---------------------------------------------------------------------- helpers


def single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one `{{ expr }}` (whitespace around allowed)."""
    if not all(type(n) is nodes.Output for n in tree.body):
        return None
    items = [child for n in tree.body for child in n.nodes]  # type: ignore[attr-defined]
    exprs = [c for c in items if type(c) is not nodes.TemplateData]
    if len(exprs) != 1 or any(c.data.strip() for c in items if type(c) is nodes.TemplateData):
        return None
    result: nodes.Expr = exprs[0]
    return result


def _check_name(name: str, node: nodes.Node) -> None:
    if name.startswith("__"):
        raise SandboxViolation(
            f"the name {name!r} is not allowed: names starting with '__' are reserved",
            line=node.lineno,
            hint="expressions cannot reach Python internals",
        )


def _check_key(key: object, node: nodes.Node) -> None:
    if isinstance(key, str) and key.startswith("__"):
        raise SandboxViolation(
            f"access to {key!r} is not allowed: expressions cannot reach Python internals",
            line=node.lineno,
            hint="look up data keys such as x.id or x['id']",
        )


def _key(key: object, path: Path) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise CompileError(f"object keys must be strings, got {key!r}", path=path)


def _unpacked(value: str, n: int) -> str:
    return value if n == 0 else f"_unp({value}, {n})"


def _strip_braces(source: str) -> str:
    s = source.strip()
    if s.startswith("{{") and s.endswith("}}"):
        return s[2:-2]
    return source


def _literal(node: nodes.Node) -> Any:
    """A literal object/list/scalar node → Python value; anything else raises ValueError."""
    t = type(node)
    if t is nodes.Const:
        return node.value  # type: ignore[attr-defined]
    if t is nodes.List or t is nodes.Tuple:
        return [_literal(n) for n in node.items]  # type: ignore[attr-defined]
    if t is nodes.Dict:
        out = {}
        for pair in node.items:  # type: ignore[attr-defined]
            key = _literal(pair.key)
            if not isinstance(key, str):
                raise ValueError("keys must be strings")
            out[key] = _literal(pair.value)
        return out
    if t is nodes.Neg and type(node.node) is nodes.Const and type(node.node.value) in (int, Decimal):  # type: ignore[attr-defined]
        return -node.node.value  # type: ignore[attr-defined]
    raise ValueError("not a literal")


def _assigned_names(body: list[nodes.Node]) -> list[str]:
    """Names `set` directly in this scope (inside ifs, not inside nested for bodies)."""
    out: list[str] = []

    def target(t: nodes.Node) -> None:
        if type(t) is nodes.Name and t.name not in out:
            out.append(t.name)
        elif type(t) is nodes.Tuple:
            for n in t.items:
                target(n)

    def walk(stmts: list[nodes.Node]) -> None:
        for n in stmts:
            if type(n) is nodes.Assign or type(n) is nodes.AssignBlock:
                target(n.target)
                if type(n) is nodes.AssignBlock:
                    walk(n.body)
            elif type(n) is nodes.If:
                walk(n.body)
                for e in n.elif_:
                    walk(e.body)
                walk(n.else_)
            elif type(n) is nodes.For:
                walk(n.else_)

    walk(body)
    return out


def _unset_setting_is_undefined(node: nodes.Filter) -> nodes.Filter:
    """`env('X') | default(y)` as `env('X', none) | default(y)`: an unset setting is undefined, so
    the filter's fallback applies (`env('X')` alone stays an error naming the setting)."""
    call = node.node
    if (
        type(call) is not nodes.Call
        or type(call.node) is not nodes.Name
        or call.node.name != "env"
        or len(call.args) != 1
        or call.kwargs
        or call.dyn_args is not None
        or call.dyn_kwargs is not None
    ):
        return node
    lenient = copy.copy(call)
    lenient.args = [call.args[0], nodes.Const(None, lineno=call.lineno)]
    rewritten = copy.copy(node)
    rewritten.node = lenient
    return rewritten


def _uses_name(body: list[nodes.Node], name: str) -> bool:
    return any(n.name == name for stmt in body for n in stmt.find_all(nodes.Name))


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Stmt):
        return _STATEMENT_NAMES.get(type(node), type(node).__name__)
    return f"the {type(node).__name__} expression"


def _usage(spec: Spec, kind: Kind) -> str:
    args = _shown_signature(spec, kind)
    if kind == "filter":
        return f"x | {spec.name}{args}"
    if kind == "test":
        return f"x is {spec.name}{args}"
    return f"{spec.name}{args}"


def _shown_signature(spec: Spec, kind: Kind) -> str:
    """`(length=255, killwords=False, end='...')`: the arguments after the value, for hints."""
    params = list(spec.call_signature().parameters.values())
    if kind != "function" and params:
        params = params[1:]
    shown = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            shown.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            shown.append(f"**{p.name}")
        elif p.default is p.empty:
            shown.append(p.name)
        else:
            shown.append(f"{p.name}={p.default!r}")
    return "(" + ", ".join(shown) + ")"
