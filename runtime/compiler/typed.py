"""Typed checks (C13): expressions against the JSON Schemas a project declares, and mapping output
against its target schema. Conservative: a check only speaks when the schema is definite.

- `input.<path>` in a flow whose webhook (or manual) trigger declares a schema, and in a Mapping's
  `fields` when it declares `input_schema`, must name properties the schema declares (SL120, with a
  suggestion). An object is *closed* for reading when it lists `properties` and its
  `additionalProperties` is absent or false (`true`, a schema, or `patternProperties` open it).
  `$ref` within the same file, `allOf`/`anyOf`/`oneOf` (their properties are united) and array
  `items` (a numeric index) are followed; anything else stops the walk without a verdict.
- `steps.X.output.<path>` where step X maps with a Mapping is checked the same way against that
  mapping's `output_schema`, or else against its field names.
- A Mapping with `fields` and `output_schema`: every required property is produced (SL121), no field
  the schema forbids (`additionalProperties: false`) (SL122), and values whose type is obvious match
  the property's type (SL123): literals, text templates (strings), and single expressions whose type
  shows (`| upper` a string, `| round_money(2)` / `sum_of` a number, `| length` an integer, a
  comparison a boolean, `input.x` typed by the input schema ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runtime.compiler.callsites import mapping_of_step
from runtime.compiler.context import CheckContext
from runtime.compiler.expressions import templated_strings
from runtime.compiler.references import did_you_mean
from runtime.compiler.walk import iter_steps
from runtime.expr import CompileError
from runtime.spec.documents import ParsedDocument, format_loc
from runtime.spec.flow import ManualTrigger
from runtime.spec.yamlload import Loc
from runtime.trigger_registry import trigger_spec, trigger_type_of

Types = frozenset[str]
Segment = str | int
_MAX_DEPTH = 32

STRING_FILTERS = frozenset(
    [
        "capitalize",
        "lower",
        "upper",
        "title",
        "trim",
        "string",
        "join",
        "replace",
        "regex_replace",
        "truncate",
        "tojson",
        "b64encode",
        "b64decode",
        "sha256",
        "hmac_sha256",
        "urlencode",
        "format_date",
    ]
)
NUMBER_FILTERS = frozenset(["abs", "round", "round_money", "sum", "sum_of", "decimal", "float"])
INTEGER_FILTERS = frozenset(["int", "length", "count", "wordcount"])
ARRAY_FILTERS = frozenset(
    [
        "list",
        "map",
        "map_each",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "sort",
        "unique",
        "batch",
        "slice",
        "jsonpath",
        "keys",
        "values",
        "items",
        "dictsort",
        "groupby",
    ]
)
FUNCTION_TYPES: dict[str, str] = {"uuid": "string", "dict": "object", "range": "array"}


class SchemaView:
    """One JSON Schema document, walked by property paths."""

    def __init__(self, root: dict[str, Any], label: str) -> None:
        self.root = root
        self.label = label

    def deref(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < _MAX_DEPTH:
            ref = node["$ref"]
            if not ref.startswith("#"):
                return True  # another file: no verdict
            target: Any = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    return True
            node = target
            seen += 1
        return node

    def branches(self, node: Any, depth: int = 0) -> list[Any]:
        """The node and every allOf/anyOf/oneOf member under it, references resolved."""
        node = self.deref(node)
        if depth > _MAX_DEPTH or not isinstance(node, dict):
            return [node]
        out: list[Any] = [node]
        for key in ("allOf", "anyOf", "oneOf"):
            members = node.get(key)
            if isinstance(members, list):
                for member in members:
                    out.extend(self.branches(member, depth + 1))
        return out

    def children(self, nodes_: list[Any], segment: Segment) -> tuple[list[Any] | None, list[str]]:
        """Schemas for `segment` under `nodes_`: (None, names) when the name is definitely unknown,
        ([], []) when there is no verdict, else the child schemas."""
        branches = [b for n in nodes_ for b in self.branches(n)]
        if isinstance(segment, int):
            found: list[Any] = []
            for b in branches:
                if not isinstance(b, dict):
                    continue
                prefix = b.get("prefixItems")
                if isinstance(prefix, list) and segment < len(prefix):
                    found.append(prefix[segment])
                elif isinstance(b.get("items"), dict | bool):
                    found.append(b["items"])
            return found, []
        names: set[str] = set()
        found = []
        for b in branches:
            if _is_open(b):
                return [], []
            props = b.get("properties")
            if isinstance(props, dict):
                names.update(props)
                if segment in props:
                    found.append(props[segment])
        if found:
            return found, []
        if not names:
            return [], []
        return None, sorted(names)

    def types(self, node: Any) -> Types | None:
        """The JSON types a value may have, or None when the schema does not say."""
        out: set[str] = set()
        node = self.deref(node)
        if not isinstance(node, dict):
            return None
        if "const" in node:
            return frozenset({_type_of_literal(node["const"])})
        if isinstance(node.get("enum"), list):
            return frozenset(_type_of_literal(v) for v in node["enum"])
        declared = node.get("type")
        if isinstance(declared, str):
            out.add(declared)
        elif isinstance(declared, list):
            out.update(str(t) for t in declared)
        for key in ("anyOf", "oneOf"):
            members = node.get(key)
            if isinstance(members, list):
                for member in members:
                    sub = self.types(member)
                    if sub is None:
                        return None
                    out |= sub
        return frozenset(out) if out else None

    def walk(self, path: tuple[Segment, ...]) -> tuple[int, str, list[str]] | list[Any]:
        """Follow `path` from the root: the schemas reached, or (index, name, known names) of the
        first segment the schema definitely does not have."""
        current: list[Any] = [self.root]
        for index, segment in enumerate(path):
            found, names = self.children(current, segment)
            if found is None:
                return index, str(segment), names
            if not found:
                return []
            current = found
        return current


def _is_open(branch: Any) -> bool:
    if branch is True or branch == {}:
        return True
    if not isinstance(branch, dict):
        return False
    extra = branch.get("additionalProperties", False)
    if extra is not False and extra is not None:
        return True
    if branch.get("patternProperties"):
        return True
    if "properties" in branch or any(k in branch for k in ("allOf", "anyOf", "oneOf", "$ref")):
        return False
    declared = branch.get("type")
    return declared == "object" or (isinstance(declared, list) and "object" in declared)


def _type_of_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "integer" if Decimal(str(value)) == Decimal(str(value)).to_integral_value() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "unknown"


def compatible(actual: Types, expected: Types, *, literal: bool = False) -> bool:
    """Whether a value of one of `actual` types may satisfy `expected`. An integer is a number; a
    computed number may be integral, so it may satisfy `integer` unless it is a literal."""
    for t in actual:
        if t in expected:
            return True
        if t == "integer" and "number" in expected:
            return True
        if t == "number" and "integer" in expected and not literal:
            return True
    return False


# --------------------------------------------------------------------------- expression types

_PARSER = ImmutableSandboxedEnvironment()


def _parse(text: str) -> nodes.Template | None:
    try:
        return _PARSER.parse(text)
    except (TemplateSyntaxError, RecursionError):
        return None


def _single(tree: nodes.Template) -> nodes.Expr | None:
    if not all(type(n) is nodes.Output for n in tree.body):
        return None
    items = [child for n in tree.body for child in n.nodes]  # type: ignore[attr-defined]
    exprs = [c for c in items if type(c) is not nodes.TemplateData]
    if len(exprs) != 1 or any(c.data.strip() for c in items if type(c) is nodes.TemplateData):
        return None
    found: nodes.Expr = exprs[0]
    return found


class TypeInference:
    """Types of YAML values and expressions, as far as they are obvious."""

    def __init__(self, input_view: SchemaView | None) -> None:
        self.input_view = input_view

    def value(self, value: Any) -> Types | None:
        if not isinstance(value, str):
            return frozenset({_type_of_literal(value)})
        if "{{" not in value and "{%" not in value:
            return frozenset({"string"})
        tree = _parse(value)
        if tree is None:
            return None
        single = _single(tree)
        if single is None:
            return frozenset({"string"})
        return self.expr(single)

    def expr(self, node: nodes.Node) -> Types | None:
        if isinstance(node, nodes.Const):
            return frozenset({_type_of_literal(node.value)})
        if isinstance(node, nodes.List | nodes.Tuple):
            return frozenset({"array"})
        if isinstance(node, nodes.Dict):
            return frozenset({"object"})
        if isinstance(node, nodes.Concat):
            return frozenset({"string"})
        if isinstance(node, nodes.Compare | nodes.Not | nodes.Test):
            return frozenset({"boolean"})
        if isinstance(node, nodes.Sub | nodes.Mul | nodes.Div | nodes.FloorDiv | nodes.Mod | nodes.Pow):
            return frozenset({"number"})
        if isinstance(node, nodes.Neg | nodes.Pos):
            return frozenset({"number"})
        if isinstance(node, nodes.Add):
            left, right = self.expr(node.left), self.expr(node.right)
            numeric = frozenset({"number", "integer"})
            if left and right and left <= numeric and right <= numeric:
                return frozenset({"number"})
            return None
        if isinstance(node, nodes.CondExpr):
            if node.expr2 is None:
                return None
            return _union(self.expr(node.expr1), self.expr(node.expr2))
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
            named = FUNCTION_TYPES.get(node.node.name)
            return frozenset({named}) if named else None
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            return self._input_type(node)
        return None

    def _filter(self, node: nodes.Filter) -> Types | None:
        name = node.name
        if name in STRING_FILTERS:
            return frozenset({"string"})
        if name in NUMBER_FILTERS:
            return frozenset({"number"})
        if name in INTEGER_FILTERS:
            return frozenset({"integer"})
        if name in ARRAY_FILTERS:
            return frozenset({"array"})
        if name in ("default", "d") and node.node is not None:
            fallback = self.expr(node.args[0]) if node.args else frozenset({"string"})
            return _union(self.expr(node.node), fallback)
        return None

    def _input_type(self, node: nodes.Node) -> Types | None:
        if self.input_view is None:
            return None
        chain = _chain(node)
        if chain is None or chain[0] != "input":
            return None
        reached = self.input_view.walk(chain[1:])
        if not isinstance(reached, list) or not reached:
            return None
        out: set[str] = set()
        for schema in reached:
            types = self.input_view.types(schema)
            if types is None:
                return None
            out |= types
        return frozenset(out)


def _chain(node: nodes.Node) -> tuple[Segment, ...] | None:
    keys: list[Segment] = []
    while True:
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if not isinstance(node.arg.value, str | int) or isinstance(node.arg.value, bool):
                return None
            keys.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            return (node.name, *reversed(keys))
        else:
            return None


def _union(a: Types | None, b: Types | None) -> Types | None:
    if a is None or b is None:
        return None
    return a | b


# ------------------------------------------------------------------------------------- checks


def check_typed(ctx: CheckContext) -> None:
    for doc in ctx.named("Flow").values():
        _check_flow(ctx, doc)
    for doc in ctx.named("Mapping").values():
        _check_mapping(ctx, doc)


def _view(ctx: CheckContext, relative: str | None) -> SchemaView | None:
    if not relative:
        return None
    entry = ctx.load_schema(relative)
    if entry.schema is None:
        return None
    return SchemaView(entry.schema, relative)


def flow_input_schema(flow_doc: ParsedDocument) -> str | None:
    trigger = flow_doc.model.trigger
    if isinstance(trigger, ManualTrigger):
        return trigger.manual.input_schema
    kind = trigger_type_of(trigger)
    schema = kind.field_value(trigger_spec(trigger), kind.schema_field)
    return str(schema) if schema else None


def _references(ctx: CheckContext, data: Any, base: Loc) -> Iterator[tuple[Loc, tuple[Segment, ...]]]:
    for loc, text, condition in templated_strings(data, base):
        try:
            compiled = ctx.engine.compile_expression(text) if condition else ctx.engine.compile(text)
        except CompileError:
            continue  # reported by the expression checks
        for chain in sorted(compiled.references, key=lambda c: tuple(str(p) for p in c)):
            if chain and chain[0] in compiled.free_names:
                yield loc, chain


def _check_flow(ctx: CheckContext, doc: ParsedDocument) -> None:
    input_view = _view(ctx, flow_input_schema(doc))
    refs = {ref.id: ref for ref in iter_steps(doc.model)}
    outputs: dict[str, SchemaView | None] = {}
    for loc, chain in _references(ctx, doc.source.data, ()):
        if chain[0] == "input" and input_view is not None:
            _check_chain(ctx, doc, loc, chain, 1, input_view, "the trigger's schema")
        elif chain[0] == "steps" and len(chain) > 3 and chain[2] == "output" and isinstance(chain[1], str):
            step_id = chain[1]
            if step_id not in outputs:
                outputs[step_id] = _output_view(ctx, mapping_of_step(ctx, refs.get(step_id)))
            view = outputs[step_id]
            if view is not None:
                _check_chain(ctx, doc, loc, chain, 3, view, f"the output of step {step_id!r}")


def _output_view(ctx: CheckContext, mapping: ParsedDocument | None) -> SchemaView | None:
    if mapping is None:
        return None
    view = _view(ctx, mapping.model.output_schema)
    if view is not None:
        return view
    if mapping.model.fields is not None:
        fields = {str(k): True for k in mapping.model.fields}
        return SchemaView({"type": "object", "properties": fields}, f"mapping {mapping.name!r} fields")
    return None


def _check_chain(
    ctx: CheckContext,
    doc: ParsedDocument,
    loc: Loc,
    chain: tuple[Segment, ...],
    skip: int,
    view: SchemaView,
    what: str,
) -> None:
    reached = view.walk(chain[skip:])
    if isinstance(reached, list):
        return
    index, name, known = reached
    upto = chain[: skip + index + 1]
    parent = _dotted(chain[: skip + index])
    ctx.report(
        doc,
        "SL120",
        f"{format_loc(loc) or 'value'}: `{_dotted(upto)}` — {what} ({view.label}) has no property "
        f"{name!r} in `{parent}`",
        loc,
        hint=did_you_mean(name, known) or ("known: " + ", ".join(known[:12]) if known else None),
    )


def _dotted(chain: tuple[Segment, ...]) -> str:
    out = ""
    for part in chain:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _check_mapping(ctx: CheckContext, doc: ParsedDocument) -> None:
    mapping = doc.model
    input_view = _view(ctx, mapping.input_schema)
    if mapping.fields is None:
        return
    data = doc.source.data.get("fields")
    if input_view is not None:
        for loc, chain in _references(ctx, data, ("fields",)):
            if chain[0] == "input":
                _check_chain(ctx, doc, loc, chain, 1, input_view, "the input schema")
    output_view = _view(ctx, mapping.output_schema)
    if output_view is not None and isinstance(data, dict):
        infer = TypeInference(input_view)
        _check_object(ctx, doc, data, output_view.root, output_view, infer, ("fields",))


def _check_object(
    ctx: CheckContext,
    doc: ParsedDocument,
    data: dict[str, Any],
    schema: Any,
    view: SchemaView,
    infer: TypeInference,
    loc: Loc,
) -> None:
    top = view.deref(schema)
    if not isinstance(top, dict):
        return
    branches = view.branches(top)
    required: list[str] = []
    for branch in [top, *_all_of(view, top)]:
        if isinstance(branch, dict) and isinstance(branch.get("required"), list):
            required.extend(str(r) for r in branch["required"] if str(r) not in required)
    missing = [name for name in required if name not in data]
    if missing:
        noun = "field" if len(missing) == 1 else "fields"
        ctx.report(
            doc,
            "SL121",
            f"mapping {doc.name!r} does not produce the required {noun} {', '.join(missing)} of {view.label}"
            + (f" at `{format_loc(loc)}`" if len(loc) > 1 else ""),
            loc,
            key=True,
            hint="add the field to `fields`, or make it optional in the schema",
        )
    closed = top.get("additionalProperties") is False and not top.get("patternProperties")
    declared = top.get("properties")
    own: dict[str, Any] = declared if isinstance(declared, dict) else {}
    for name, value in data.items():
        here = (*loc, name)
        if closed and name not in own:
            ctx.report(
                doc,
                "SL122",
                f"field {name!r} is not allowed by {view.label} (additionalProperties: false)",
                here,
                key=True,
                hint=did_you_mean(str(name), own) or "allowed: " + ", ".join(sorted(own)),
            )
            continue
        props = [b["properties"][name] for b in branches if isinstance(b, dict) and name in b.get("properties", {})]
        if not props:
            continue
        expected = view.types(props[0])
        actual = infer.value(value)
        literal = not isinstance(value, str) or ("{{" not in value and "{%" not in value)
        if expected is not None and actual is not None and not compatible(actual, expected, literal=literal):
            ctx.report(
                doc,
                "SL123",
                f"field {name!r} gives {_names(actual)} but {view.label} wants {_names(expected)}",
                here,
                hint="convert the value (e.g. `| decimal`, `| string`) or fix the schema",
            )
            continue
        target = view.deref(props[0])
        if (
            literal
            and isinstance(target, dict)
            and isinstance(target.get("enum"), list)
            and value not in target["enum"]
        ):
            ctx.report(doc, "SL123", f"field {name!r} is {value!r}, not one of {target['enum']} ({view.label})", here)
        if isinstance(value, dict):
            _check_object(ctx, doc, value, props[0], view, infer, here)


def _all_of(view: SchemaView, node: dict[str, Any]) -> list[Any]:
    members = node.get("allOf")
    if not isinstance(members, list):
        return []
    out: list[Any] = []
    for member in members:
        resolved = view.deref(member)
        out.append(resolved)
        if isinstance(resolved, dict):
            out.extend(_all_of(view, resolved))
    return out


def _names(types: Types) -> str:
    return " or ".join(sorted(types))
