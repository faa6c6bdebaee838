"""The JSON Schema of every document kind, generated from the models (what `syncline schema` prints).

Editors use it for completion and checks (see docs/editors.md); the committed copy in
`schemas/syncline.schema.json` is kept fresh by a test.

Unions are written for standard JSON Schema validators, which ignore OpenAPI's `discriminator`
keyword: a union chosen by a property (`kind`, a connection's `type`) becomes one `if`/`then` per
value, and a union chosen by which key is present (a step's `call`/`set`/..., a trigger's
`webhook`/`schedule`/...) one `if: {required: [key]}`/`then` per member. A validator then checks a
document against its own branch only, so its first error (`best_match`) is the document's own
mistake, not "does not match the Project branch".
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from runtime import __version__
from runtime.plugins import ConnectorRegistry
from runtime.spec.connection import connection_model
from runtime.spec.documents import STATIC_KINDS

SCHEMA_ID = "https://syncline.dev/schemas/syncline.schema.json"


def document_union(registry: ConnectorRegistry) -> Any:
    members: list[Any] = [STATIC_KINDS["Project"], connection_model(registry)]
    members.extend(STATIC_KINDS[k] for k in ("Ownership", "Policy", "StateMachine", "Flow", "Mapping", "FlowTest"))
    return Annotated[Union[tuple(members)], Field(discriminator="kind")]  # noqa: UP007


def json_schema(registry: ConnectorRegistry) -> dict[str, Any]:
    schema = TypeAdapter(document_union(registry)).json_schema(by_alias=True, mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Syncline project document",
        "description": f"Any Syncline document (syncline {__version__}): Project, Connection, Ownership, Policy, "
        "StateMachine, Flow, Mapping or FlowTest, chosen by `kind`.",
        **schema,
    }
    return standard_unions(schema)


def standard_unions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every discriminated or key-selected `oneOf` rewritten as if/then branches."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        ref = node.get("$ref", "") if isinstance(node, dict) else ""
        return defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/$defs/") else node

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: rewrite(value) for key, value in node.items()}
        if "discriminator" in node:
            return _by_property(node)
        markers = _markers(node.get("oneOf"), resolve)
        if markers is not None:
            return _by_key(node, markers)
        return node

    rewritten: dict[str, Any] = rewrite(schema)
    return rewritten


def _by_property(node: dict[str, Any]) -> dict[str, Any]:
    """`oneOf` + `discriminator: {propertyName, mapping}` → an enum on the property and if/then per value."""
    rest = {k: v for k, v in node.items() if k not in ("discriminator", "oneOf")}
    name = node["discriminator"]["propertyName"]
    branches = []
    for value, target in node["discriminator"]["mapping"].items():
        then = {"$ref": target} if isinstance(target, str) else target
        branches.append({"if": {"properties": {name: {"const": value}}, "required": [name]}, "then": then})
    values = list(node["discriminator"]["mapping"])
    return {**rest, "type": "object", "required": [name], "properties": {name: {"enum": values}}, "allOf": branches}


def _markers(members: Any, resolve: Any) -> list[str] | None:
    """For a `oneOf` of object schemas each requiring a key no other member requires: those keys."""
    if not isinstance(members, list) or len(members) < 2:
        return None
    required = []
    for member in members:
        target = resolve(member)
        if not isinstance(target, dict) or target.get("type") != "object":
            return None
        required.append(set(target.get("required", [])))
    markers = []
    for index, keys in enumerate(required):
        others = set().union(*(r for i, r in enumerate(required) if i != index))
        own = sorted(keys - others)
        if not own:
            return None
        markers.append(own[0])
    return markers


def _by_key(node: dict[str, Any], markers: list[str]) -> dict[str, Any]:
    """`oneOf` of members told apart by a key → one if/then per member; one of the keys is required."""
    rest = {k: v for k, v in node.items() if k != "oneOf"}
    branches = [{"if": {"required": [key]}, "then": member} for key, member in zip(markers, node["oneOf"], strict=True)]
    return {**rest, "type": "object", "anyOf": [{"required": [key]} for key in markers], "allOf": branches}


def json_schema_text(registry: ConnectorRegistry) -> str:
    return json.dumps(json_schema(registry), indent=2, sort_keys=False, default=str) + "\n"
