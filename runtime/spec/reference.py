"""Generates the reference page `docs/reference.md` from the models (run `make docs`).

Every document kind, trigger kind, step kind and connector gets a section with its description, a
table of its fields (type, default, description) and a YAML example. Examples live in
`runtime/spec/examples.py`; a test validates every YAML block of the generated page.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from typing import Any, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from runtime.plugins import ConnectorRegistry, default_registry
from runtime.spec.documents import STATIC_KINDS
from runtime.spec.examples import CONNECTION_EXAMPLES, KIND_EXAMPLES, STEP_EXAMPLES, TRIGGER_EXAMPLES
from runtime.spec.flow import STEP_KINDS, TRIGGER_KINDS, StepBase

INTRO = """# Syncline reference

Generated from the models by `make docs` (`python -m runtime.spec.reference`); do not edit by hand.
Every YAML example on this page is validated by `tests/spec/test_reference.py`.

A project is a folder with `syncline.yaml` (kind `Project`) and documents under `systems/`,
`governance/`, `flows/`, `mappings/` and `tests/flows/`. Every document has `kind:` and `name:`;
a file may hold several documents separated by `---`.

Values: a string that is exactly one `{{ expression }}` evaluates to the expression's native value; a
string with text around `{{ }}` renders to a string; other strings are literals. Durations are written
`500ms`, `30s`, `5m`, `2h`, `7d`. Booleans are `true`/`false` (YAML 1.2: `yes`, `on`, `no` are strings).
See `docs/expressions.md` for the expression language and `docs/diagnostics.md` for error codes.
"""


def render(registry: ConnectorRegistry) -> str:
    out = [INTRO, "## Contents\n"]
    out.append("- Document kinds: " + ", ".join(f"[{k}](#kind-{k.lower()})" for k in _kind_order()))
    out.append("- Triggers: " + ", ".join(f"[{k}](#trigger-{k})" for k in TRIGGER_KINDS))
    out.append("- Steps: " + ", ".join(f"[{k}](#step-{k})" for k in STEP_KINDS))
    out.append("- Connectors: " + ", ".join(f"[{c.name}](#connector-{c.name})" for c in registry) + "\n")
    for kind in _kind_order():
        out.append(f'<a id="kind-{kind.lower()}"></a>\n\n## kind: {kind}\n')
        if kind == "Connection":
            out.append(
                "One external system: `type` picks the connector, whose `config` and operation fields "
                "are listed under [Connectors](#connectors).\n"
            )
            out.append(_connection_table(registry))
        else:
            model: type[BaseModel] = STATIC_KINDS[kind]
            out.append(_doc(model) + "\n")
            out.append(_fields_table(model))
            out.extend(_nested_tables(model, {model}))
        for example in KIND_EXAMPLES.get(kind, []):
            out.append(_yaml_block(example))
    out.append("## Triggers\n\nA flow's `trigger:` holds exactly one of these keys.\n")
    for key, model in TRIGGER_KINDS.items():
        spec: Any = model.model_fields[key].annotation
        out.append(f'<a id="trigger-{key}"></a>\n\n### trigger: {key}\n')
        out.append(_doc(spec) + "\n")
        out.append(_fields_table(spec))
        out.extend(_nested_tables(spec, {spec}))
        for example in TRIGGER_EXAMPLES.get(key, []):
            out.append(_yaml_block(example))
    out.append("## Steps\n\nA step holds exactly one of the step keys below, plus any of these common keys:\n")
    out.append(_fields_table(StepBase))
    out.extend(_nested_tables(StepBase, {StepBase}))
    for key, step_model in STEP_KINDS.items():
        model = step_model
        out.append(f'<a id="step-{key}"></a>\n\n### step: {key}\n')
        out.append(_doc(model) + "\n")
        own = {n: f for n, f in model.model_fields.items() if n not in StepBase.model_fields}
        out.append(_fields_table(model, own))
        out.extend(_nested_tables(model, {model, StepBase}, own))
        for example in STEP_EXAMPLES.get(key, []):
            out.append(_yaml_block(example))
    out.append('<a id="connectors"></a>\n\n## Connectors\n')
    for connector in registry:
        out.append(f'<a id="connector-{connector.name}"></a>\n\n### connector: {connector.name}\n')
        out.append(connector.description + "\n")
        out.append(f"#### `config` of `type: {connector.name}`\n")
        out.append(_fields_table(connector.config_model))
        out.extend(_nested_tables(connector.config_model, {connector.config_model}))
        out.append(f"#### An operation of `type: {connector.name}`\n")
        out.append(_fields_table(connector.operation_model))
        out.extend(_nested_tables(connector.operation_model, {connector.operation_model}))
        for example in CONNECTION_EXAMPLES.get(connector.name, []):
            out.append(_yaml_block(example))
    return "\n".join(out).rstrip() + "\n"


def _kind_order() -> list[str]:
    return ["Project", "Connection", "Ownership", "Policy", "StateMachine", "Flow", "Mapping", "FlowTest"]


def _connection_base() -> type[BaseModel]:
    from runtime.spec.connection import ConnectionBase

    return ConnectionBase


def _connection_table(registry: ConnectorRegistry) -> str:
    """The Connection's own fields and the three its connector type shapes: `type`, `config`, `operations`."""
    types_ = " \\| ".join(f"`{c.name}`" for c in registry)
    links = ", ".join(f"[{c.name}](#connector-{c.name})" for c in registry)
    rows = [
        f"| `type` | {types_} | required | Connector type: which connector talks to the system. |",
        f"| `config` | the connector's config | required | Settings of the connector ({links}). |",
        f"| `operations` | map of the connector's operations | empty | Operations by name ({links}). |",
    ]
    return _fields_table(_connection_base()) + "\n".join(rows) + "\n"


def _doc(model: Any) -> str:
    text = (getattr(model, "__doc__", None) or "").strip()
    return text.split("\n\n")[0].replace("\n", " ")


def _yaml_block(text: str) -> str:
    return "```yaml\n" + text.strip() + "\n```\n"


def _fields_table(model: type[BaseModel], fields: dict[str, FieldInfo] | None = None) -> str:
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in (fields or model.model_fields).items():
        shown = info.alias or name
        type_name = "duration" if _is_duration(info.metadata) else _type_name(info.annotation)
        default = "required" if info.is_required() else _default(info, duration=type_name == "duration")
        desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{shown}` | {type_name} | {default} | {desc} |")
    return "\n".join(rows) + "\n"


def _is_duration(metadata: Any) -> bool:
    """Whether annotation metadata marks a duration (`30s`, `500ms`; its JSON Schema says so)."""
    for item in metadata:
        schema = getattr(item, "json_schema", None)
        if not isinstance(schema, dict):
            continue
        patterns = [str(m.get("pattern", "")) for m in schema.get("anyOf", []) if isinstance(m, dict)]
        if str(schema.get("description", "")).startswith("A duration") or any("ms|s|m|h|d" in p for p in patterns):
            return True
    return False


def _default(info: FieldInfo, *, duration: bool = False) -> str:
    if info.default_factory is not None:
        try:
            value = info.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "—"
        return f"`{value!r}`" if value not in ({}, []) else "empty"
    if info.default is PydanticUndefined or info.default is None:
        return "—"
    if isinstance(info.default, enum.Enum):
        return f"`{info.default.value}`"
    if duration and isinstance(info.default, int | float):
        return f"`{info.default:g}s`"
    return f"`{info.default}`"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        if _is_duration(annotation.__metadata__):
            return "duration"
        return _type_name(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        parts = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"list of {_type_name(item)}"
    if origin is dict:
        args = typing.get_args(annotation)
        return f"map of {_type_name(args[1])}" if len(args) == 2 else "map"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        if issubclass(annotation, enum.Enum):
            return " \\| ".join(f"`{m.value}`" for m in annotation)
        return {
            "str": "string",
            "int": "integer",
            "bool": "boolean",
            "float": "number",
            "Decimal": "number",
        }.get(annotation.__name__, annotation.__name__)
    if annotation is Any:
        return "any"
    return str(annotation).replace("typing.", "")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found.append(ann)
            continue
        stack.extend(typing.get_args(ann))
    return found


def _nested_tables(
    model: type[BaseModel], seen: set[type[BaseModel]], fields: dict[str, FieldInfo] | None = None
) -> list[str]:
    out: list[str] = []
    queue = [m for info in (fields or model.model_fields).values() for m in _models_in(info.annotation)]
    while queue:
        nested = queue.pop(0)
        if nested in seen or nested in STEP_KINDS.values() or issubclass(nested, StepBase):
            continue
        seen.add(nested)
        out.append(f'<a id="{nested.__name__.lower()}"></a>\n\n#### {nested.__name__}\n')
        if _doc(nested):
            out.append(_doc(nested) + "\n")
        out.append(_fields_table(nested))
        queue.extend(m for info in nested.model_fields.values() for m in _models_in(info.annotation))
    return out


def main() -> int:
    sys.stdout.write(render(default_registry()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
