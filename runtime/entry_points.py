"""Loading plugins from an entry-point group, the same way for connectors, step kinds and trigger kinds."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from runtime.errors import SynclineError


def load_plugins(group: str, what: str, error: type[SynclineError], name_of: Callable[[Any], str | None]) -> list[Any]:
    """The values named in the entry-point `group`, by entry-point name. A plugin that fails to load,
    or whose value is named differently from its entry point (`name_of`), is an `error` naming it: a
    broken plugin must not hide behind a traceback."""
    values = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            value = ep.load()
        except Exception as exc:
            raise error(f"{what} plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        name = name_of(value)
        if name is not None and name != ep.name:
            raise error(f"entry point {ep.name!r} exports {what} {name!r}")
        values.append(value)
    return values


def not_installed(group: str, what: str) -> str:
    """The message for an empty entry-point group (Syncline's own package is not installed)."""
    return f"no {what}s found in the {group!r} entry points: is syncline installed (pip install -e .)?"
