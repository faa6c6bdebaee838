"""A step kind from an outside package: built here as its own project (pyproject with a `syncline.steps`
entry point, tests/plugin_package.py), installed with pip into a fresh venv that sees Syncline's
installed environment, and used by a flow through `syncline validate`, `syncline run` and
`syncline graph` — with no change to Syncline.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.plugin_package import install_plugin, run_in

PLUGIN_MODULE = '''
"""`uppercase`: a step kind from outside Syncline: upper-cases a rendered text."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.step_api import StepBase, StepHandler, StepType


class UppercaseStep(StepBase):
    """Upper-case a text."""

    uppercase: str = Field(description="The text (a template) to upper-case.")


class UppercaseHandler(StepHandler):
    effects = "pure"
    recomputable = True

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, UppercaseStep)
        return step.uppercase

    def graph_label(self, step: StepBase) -> str:
        return "text"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        return {"text": compiler.value(step.uppercase, f"{compiled.id}.uppercase")}

    async def execute(self, call: Any) -> Any:
        return str(call.render(call.step.fields["text"])).upper()


STEP = StepType("uppercase", UppercaseStep, UppercaseHandler())
'''

FLOW = """
kind: Flow
name: shout
trigger:
  manual: {}
steps:
  - id: loud
    uppercase: "hello {{ input.name }}"
  - id: done
    set: {greeting: "{{ steps.loud.output }}"}
"""

BROKEN_FLOW = """
kind: Flow
name: whisper
trigger:
  manual: {}
steps:
  - id: loud
    uppercase: {text: "not a string"}
  - lowercase: "no such kind"
"""


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the plugin installed, seeing the development venv's packages."""
    return install_plugin(
        tmp_path_factory.mktemp("step-plugin"),
        "syncline-uppercase",
        "syncline_uppercase",
        {"syncline.steps": {"uppercase": "syncline_uppercase:STEP"}},
        PLUGIN_MODULE,
    )


def _project(root: Path, flows: dict[str, str]) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: plugin-test\n")
    for name, text in flows.items():
        (root / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def _syncline(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_in(python, "-m", "runtime.cli", *args, cwd=cwd)


def test_the_plugin_is_not_in_the_development_venv() -> None:
    from runtime.step_registry import default_step_registry

    assert default_step_registry().get("uppercase") is None


def test_a_flow_runs_a_step_kind_from_an_installed_plugin(plugin_python: Path, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"shout": FLOW})
    checked = _syncline(plugin_python, "validate", str(root), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    (root / "input.json").write_text(json.dumps({"name": "ada"}))
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    ran = _syncline(
        plugin_python,
        "run",
        "shout",
        "--input",
        str(root / "input.json"),
        "--project",
        str(root),
        "--store",
        store,
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout)
    assert report["run"]["status"] == "succeeded", report
    assert report["output"] == {"greeting": "HELLO ADA"}, report

    drawn = _syncline(plugin_python, "graph", "shout", "--project", str(root), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    assert "loud: uppercase text" in drawn.stdout


def test_validate_checks_a_plugin_step_against_its_model(plugin_python: Path, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"whisper": BROKEN_FLOW})
    checked = _syncline(plugin_python, "validate", str(root), cwd=tmp_path)
    assert checked.returncode != 0
    text = checked.stdout + checked.stderr
    assert "flows/whisper.yaml:8:16: error SL012 steps[0].uppercase: expected text, got a mapping" in text, text
    # the plugin's kind is one of the kinds a step may have
    assert "flows/whisper.yaml:9:5: error SL014 steps[1]: a step needs one of: validate, map" in text, text
    assert ", flow, uppercase" in text, text
    assert "Traceback" not in text, text
