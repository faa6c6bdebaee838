"""`kind: Connection`: one external system, its connector type, config and operations.

The `config` and `operations` models come from the connector type (see `runtime.connector_api`),
so the Connection model is built per connector registry: a union discriminated by `type`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model

from runtime.plugins import ConnectorRegistry
from runtime.spec.common import Document


class ConnectionBase(Document):
    """Fields every connection has, whatever its connector type."""

    kind: Literal["Connection"] = Field("Connection", description="Document kind.")
    system: str | None = Field(
        None,
        description="The business system this connects to (default: the connection name).",
        examples=["erp"],
    )

    preset: str | None = Field(
        None,
        description="A system preset shipped with Syncline (`syncline systems list`): its base URL, auth, "
        "pagination, encoding, error mapping, rate-limit handling and operations are merged under this "
        "document's own fields, which win (mappings merge key by key, operations by name, null removes).",
        examples=["stripe", "salesforce"],
    )
    account: dict[str, Any] | None = Field(
        None,
        description="The preset's account-specific values (`syncline systems show NAME` lists them).",
        examples=[{"shop": "acme-store"}],
    )

    def system_name(self) -> str:
        return self.system or self.name


@cache
def connection_model(registry: ConnectorRegistry) -> Any:
    """The Connection model for the connector types of `registry`: a union tagged by `type`."""
    members: list[Any] = []
    for connector_type in registry:
        model = create_model(
            f"{_camel(connector_type.name)}Connection",
            __base__=ConnectionBase,
            __doc__=f"A connection of type `{connector_type.name}`: {connector_type.description}",
            type=(Literal[connector_type.name], Field(description="Connector type.")),  # type: ignore[arg-type]
            config=(
                connector_type.config_model,
                Field(description=f"Settings of the {connector_type.name} connector."),
            ),
            operations=(
                dict[str, connector_type.operation_model],  # type: ignore[name-defined]
                Field(default_factory=dict, description="Operations by name."),
            ),
        )
        members.append(model)
    if not members:
        return ConnectionBase
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
