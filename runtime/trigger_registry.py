"""The trigger registry: the trigger kinds a project can use, by key and by model.

Built-in and third-party trigger kinds are discovered through the `syncline.triggers` entry-point
group (`TriggerRegistry.discover()`), as connectors are through `syncline.connectors`
(runtime/plugins.py) and step kinds through `syncline.steps`. The flow model's `Trigger` union is
built from `default_trigger_registry()` when `runtime.spec.flow` is first imported, so a flow naming
a kind that no installed package provides is refused by validate with the kinds that are installed.
The checker, planner and service ask `trigger_type_of(trigger)` what a kind declares
(runtime/source_api.py) instead of testing its class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field, create_model

from runtime.entry_points import load_plugins, not_installed
from runtime.errors import SynclineError
from runtime.source_api import TriggerType
from runtime.spec.common import Model

ENTRY_POINT_GROUP = "syncline.triggers"


class TriggerPluginError(SynclineError):
    """A trigger plugin could not be loaded or is malformed."""


class TriggerRegistry:
    """Trigger types by key, in their declared order (`order`, then key)."""

    def __init__(self, types: Iterable[TriggerType] = ()) -> None:
        self._types: dict[str, TriggerType] = {}
        self._wrappers: dict[type[BaseModel], TriggerType] = {}
        for trigger_type in types:
            self.register(trigger_type)

    def register(self, trigger_type: TriggerType) -> None:
        if not isinstance(trigger_type, TriggerType):
            raise TriggerPluginError(f"{trigger_type!r} is not a TriggerType")
        key = trigger_type.key
        if not key.isidentifier():
            raise TriggerPluginError(f"trigger kind {key!r}: the key must be a name")
        if not (isinstance(trigger_type.model, type) and issubclass(trigger_type.model, BaseModel)):
            raise TriggerPluginError(f"trigger kind {key!r}: model must be a pydantic model")
        if key in self._types:
            raise TriggerPluginError(f"trigger kind {key!r} is registered twice")
        for name in ("connection_field", "call_field", "idempotency_field", "ordering_field"):
            field = getattr(trigger_type, name)
            if field is not None and field not in trigger_type.model.model_fields:
                raise TriggerPluginError(f"trigger kind {key!r}: {name} {field!r} is not a field of its model")
        wrapper = trigger_type.wrapper or _wrapper(key, trigger_type.model)
        if key not in wrapper.model_fields:
            raise TriggerPluginError(f"trigger kind {key!r}: wrapper {wrapper.__name__} has no field {key!r}")
        self._types[key] = trigger_type
        self._wrappers[wrapper] = trigger_type
        ordered = sorted(self._types.values(), key=lambda t: (t.order, t.key))
        self._types = {t.key: t for t in ordered}

    def get(self, key: str) -> TriggerType | None:
        return self._types.get(key)

    def wrapper(self, key: str) -> type[BaseModel]:
        """The model of the whole trigger mapping of a kind (`{queue: QueueSpec}`)."""
        for wrapper, trigger_type in self._wrappers.items():
            if trigger_type.key == key:
                return wrapper
        raise KeyError(key)

    def of(self, trigger: BaseModel) -> TriggerType:
        """The trigger type of a parsed trigger (an instance of a kind's wrapper)."""
        found = self._wrappers.get(type(trigger))
        if found is None:
            raise KeyError(type(trigger).__name__)
        return found

    def names(self) -> list[str]:
        return list(self._types)

    def __iter__(self) -> Iterator[TriggerType]:
        return iter(list(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    @classmethod
    def discover(cls) -> TriggerRegistry:
        """Load every trigger kind named in the `syncline.triggers` entry points."""
        registry = cls()
        name_of = lambda value: value.key if isinstance(value, TriggerType) else None  # noqa: E731
        for value in load_plugins(ENTRY_POINT_GROUP, "trigger kind", TriggerPluginError, name_of):
            registry.register(value)
        if not len(registry):
            raise TriggerPluginError(not_installed(ENTRY_POINT_GROUP, "trigger kind"))
        return registry


def _wrapper(key: str, model: type[BaseModel]) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in key.split("_")) + "Trigger"
    fields: dict[str, Any] = {key: (model, Field(description=model.__doc__ or ""))}
    wrapper: type[BaseModel] = create_model(name, __base__=Model, **fields)
    return wrapper


_default: TriggerRegistry | None = None


def default_trigger_registry() -> TriggerRegistry:
    """The registry of installed trigger kinds, discovered once per process."""
    global _default
    if _default is None:
        _default = TriggerRegistry.discover()
    return _default


def trigger_type_of(trigger: BaseModel) -> TriggerType:
    """What the kind of a parsed flow trigger declares."""
    return default_trigger_registry().of(trigger)


def trigger_spec(trigger: BaseModel) -> Any:
    """The body of a parsed flow trigger (`trigger.queue` for a queue trigger)."""
    return getattr(trigger, trigger_type_of(trigger).key)
