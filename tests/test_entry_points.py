"""Plugins load the same way for connectors, step kinds and trigger kinds (runtime/entry_points.py): a
plugin that fails to import, or that exports a kind under another name, is a clear error naming it."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

import runtime.entry_points as loading
from runtime.plugins import ConnectorRegistry, PluginError
from runtime.step_registry import StepPluginError, StepRegistry
from runtime.trigger_registry import TriggerPluginError, TriggerRegistry


def _fake(monkeypatch: pytest.MonkeyPatch, registry: Any, **points: str) -> None:
    """Entry points of the registry's group replaced by `points` (other groups as installed)."""
    import runtime.spec.flow  # noqa: F401 (the flow model loads the installed kinds first)

    real = loading.entry_points
    group_of = {ConnectorRegistry: "syncline.connectors", StepRegistry: "syncline.steps"}
    mine = group_of.get(registry, "syncline.triggers")

    def entry_points(group: str) -> Any:
        if group != mine:
            return real(group=group)
        return [EntryPoint(name, value, group) for name, value in points.items()]

    monkeypatch.setattr(loading, "entry_points", entry_points)


@pytest.mark.parametrize(
    ("registry", "error", "what"),
    [
        (ConnectorRegistry, PluginError, "connector"),
        (StepRegistry, StepPluginError, "step kind"),
        (TriggerRegistry, TriggerPluginError, "trigger kind"),
    ],
)
def test_a_plugin_that_fails_to_import_is_named(
    monkeypatch: pytest.MonkeyPatch, registry: Any, error: type[Exception], what: str
) -> None:
    _fake(monkeypatch, registry, broken="syncline_no_such_plugin_module:THING")
    with pytest.raises(error, match=rf"{what} plugin 'broken' \(syncline_no_such_plugin_module:THING\) failed to load"):
        registry.discover()


@pytest.mark.parametrize(
    ("registry", "error", "value", "message"),
    [
        (ConnectorRegistry, PluginError, "connectors.sql:CONNECTOR", "exports connector 'sql'"),
        (StepRegistry, StepPluginError, "runtime.steps.map:STEP", "exports step kind 'map'"),
        (TriggerRegistry, TriggerPluginError, "runtime.triggers.poll:TRIGGER", "exports trigger kind 'poll'"),
    ],
)
def test_a_plugin_under_another_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, registry: Any, error: type[Exception], value: str, message: str
) -> None:
    _fake(monkeypatch, registry, renamed=value)
    with pytest.raises(error, match=rf"entry point 'renamed' {message}"):
        registry.discover()


def test_no_trigger_kinds_at_all_says_syncline_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, TriggerRegistry)
    with pytest.raises(TriggerPluginError, match=r"is syncline installed \(pip install -e \.\)"):
        TriggerRegistry.discover()
