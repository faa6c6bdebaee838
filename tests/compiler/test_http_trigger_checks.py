"""validate's checks of the triggers that take HTTP requests (runtime/compiler/triggers.py) ask the
kind's `http` intake for its method and path: a kind's intake that cannot be built is reported at the
trigger (SL044), not left to fail the node's start."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runtime.compiler.triggers as trigger_checks
from runtime.compiler import check_project
from runtime.source_api import TriggerType
from runtime.trigger_registry import trigger_type_of

FLOW = """\
kind: Flow
name: orders
trigger:
  webhook: {path: /hooks/orders}
steps:
  - id: note
    set: {ok: true}
"""


def _project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: http-checks\n")
    (root / "flows" / "orders.yaml").write_text(textwrap.dedent(FLOW))
    return root


def test_a_valid_webhook_path_passes(tmp_path: Path) -> None:
    assert check_project(_project(tmp_path / "p")).errors == []


def test_an_intake_that_cannot_be_built_is_reported_at_the_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: Any) -> Any:
        raise ValueError("no signing scheme for this path")

    def kind_of(trigger: Any) -> TriggerType:
        return dataclasses.replace(trigger_type_of(trigger), http=broken)

    monkeypatch.setattr(trigger_checks, "trigger_type_of", kind_of)
    errors = check_project(_project(tmp_path / "p")).errors
    assert [(d.code, d.message) for d in errors] == [
        ("SL044", "the webhook trigger cannot take requests: no signing scheme for this path")
    ]
    assert errors[0].line == 4
