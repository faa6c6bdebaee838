"""The connector registry: a value holding the connector types a project can use.

Built-in and third-party connectors are discovered through the `syncline.connectors` entry-point
group (`ConnectorRegistry.discover()`); tests and embedders can also build a registry by hand.
Nothing registers itself at import time.
"""

from __future__ import annotations

from collections.abc import Iterable

from runtime.connector_api import ConnectorType, OperationSpec
from runtime.entry_points import load_plugins
from runtime.errors import SynclineError

ENTRY_POINT_GROUP = "syncline.connectors"


class PluginError(SynclineError):
    """A connector plugin could not be loaded or is malformed."""


class ConnectorRegistry:
    """Connector types by name."""

    def __init__(self, types: Iterable[ConnectorType] = ()) -> None:
        self._types: dict[str, ConnectorType] = {}
        for connector_type in types:
            self.register(connector_type)

    def register(self, connector_type: ConnectorType) -> None:
        if not isinstance(connector_type, ConnectorType):
            raise PluginError(f"{connector_type!r} is not a ConnectorType")
        if not issubclass(connector_type.operation_model, OperationSpec):
            raise PluginError(f"connector {connector_type.name!r}: operation_model must extend OperationSpec")
        if connector_type.name in self._types:
            raise PluginError(f"connector type {connector_type.name!r} is registered twice")
        self._types[connector_type.name] = connector_type

    def get(self, name: str) -> ConnectorType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._types[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._types)

    @classmethod
    def discover(cls) -> ConnectorRegistry:
        """Load every connector named in the `syncline.connectors` entry points."""
        registry = cls()
        name_of = lambda value: value.name if isinstance(value, ConnectorType) else None  # noqa: E731
        for value in load_plugins(ENTRY_POINT_GROUP, "connector", PluginError, name_of):
            registry.register(value)
        return registry


_default: ConnectorRegistry | None = None


def default_registry() -> ConnectorRegistry:
    """The registry of installed plugins, discovered once per process."""
    global _default
    if _default is None:
        _default = ConnectorRegistry.discover()
    return _default
