"""The JSON Schema of every document kind, generated from the models (what `syncline schema` prints).

Editors use it for completion and checks (see docs/editors.md); the committed copy in
`schemas/syncline.schema.json` is kept fresh by a test.
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
    return schema


def json_schema_text(registry: ConnectorRegistry) -> str:
    return json.dumps(json_schema(registry), indent=2, sort_keys=False, default=str) + "\n"
