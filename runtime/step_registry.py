"""The step registry: the step kinds a project can use, by key and by model.

Built-in and third-party step kinds are discovered through the `syncline.steps` entry-point group
(`StepRegistry.discover()`), as connectors are through `syncline.connectors` (runtime/plugins.py).
The flow model's `Step` union is built from `default_step_registry()` when `runtime.spec.flow` is
first imported; the compiler, engine and renderers ask `step_type_of(step)` / `step_type(key)` what a
step declares (runtime/step_api.py) instead of testing its class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from runtime.entry_points import load_plugins, not_installed
from runtime.errors import SynclineError
from runtime.spec.step_base import StepBase
from runtime.step_api import StepHandler, StepType

ENTRY_POINT_GROUP = "syncline.steps"


class StepPluginError(SynclineError):
    """A step plugin could not be loaded or is malformed."""


# keys every step may take: a step kind's key cannot be one of them
_COMMON_KEYS = frozenset((field.alias or name) for name, field in StepBase.model_fields.items()) | frozenset(
    StepBase.model_fields
)


class StepRegistry:
    """Step types by key, in their declared order (`order`, then key)."""

    def __init__(self, types: Iterable[StepType] = ()) -> None:
        self._types: dict[str, StepType] = {}
        self._by_model: dict[type[StepBase], StepType] = {}
        for step_type in types:
            self.register(step_type)

    def register(self, step_type: StepType) -> None:
        if not isinstance(step_type, StepType):
            raise StepPluginError(f"{step_type!r} is not a StepType")
        key = step_type.key
        if not key.isidentifier() or key in _COMMON_KEYS:
            raise StepPluginError(f"step kind {key!r}: the key must be a name that is not a common step key")
        if not (isinstance(step_type.model, type) and issubclass(step_type.model, StepBase)):
            raise StepPluginError(f"step kind {key!r}: model must extend StepBase")
        aliases = {(field.alias or name) for name, field in step_type.model.model_fields.items()}
        if key not in aliases:
            raise StepPluginError(f"step kind {key!r}: model {step_type.model.__name__} has no field {key!r}")
        if not isinstance(step_type.handler, StepHandler):
            raise StepPluginError(f"step kind {key!r}: handler must extend runtime.step_api.StepHandler")
        if key in self._types:
            raise StepPluginError(f"step kind {key!r} is registered twice")
        if step_type.model in self._by_model:
            raise StepPluginError(f"step kind {key!r}: model {step_type.model.__name__} is already registered")
        self._types[key] = step_type
        self._by_model[step_type.model] = step_type
        ordered = sorted(self._types.values(), key=lambda t: (t.order, t.key))
        self._types = {t.key: t for t in ordered}

    def get(self, key: str) -> StepType | None:
        return self._types.get(key)

    def of(self, step: StepBase) -> StepType:
        """The step type of a step model instance."""
        found = self._by_model.get(type(step))
        if found is None:
            raise KeyError(type(step).__name__)
        return found

    def names(self) -> list[str]:
        """The registered keys, in order."""
        return list(self._types)

    def __iter__(self) -> Iterator[StepType]:
        return iter(list(self._types.values()))

    def __len__(self) -> int:
        return len(self._types)

    @classmethod
    def discover(cls) -> StepRegistry:
        """Load every step kind named in the `syncline.steps` entry points."""
        registry = cls()
        name_of = lambda value: value.key if isinstance(value, StepType) else None  # noqa: E731
        for value in load_plugins(ENTRY_POINT_GROUP, "step kind", StepPluginError, name_of):
            registry.register(value)
        if not len(registry):
            raise StepPluginError(not_installed(ENTRY_POINT_GROUP, "step kind"))
        return registry


_default: StepRegistry | None = None


def default_step_registry() -> StepRegistry:
    """The registry of installed step kinds, discovered once per process."""
    global _default
    if _default is None:
        _default = StepRegistry.discover()
    return _default


def step_type(key: str) -> StepType:
    """The installed step type with this key (KeyError when none is)."""
    found = default_step_registry().get(key)
    if found is None:
        raise KeyError(key)
    return found


def step_type_of(step: StepBase) -> StepType:
    """The installed step type of a step model instance."""
    return default_step_registry().of(step)


def handler_of(step: StepBase) -> StepHandler:
    return step_type_of(step).handler


def is_pure(key: str) -> bool:
    """Whether the step kind with this key has no effect outside the run (unknown kinds have)."""
    found = default_step_registry().get(key)
    return found is not None and found.handler.effects == "pure"
