"""A step kind from an outside package: built here as its own project (pyproject with a `syncline.steps`
entry point), installed with pip into a fresh venv that sees Syncline's installed environment, and used
by a flow through `syncline validate`, `syncline run` and `syncline graph` — with no change to Syncline.

The venv is created without pip and reuses the development venv's site-packages through a `.pth`
(`site.addsitedir`, so Syncline's own editable install is found as it is there); pip runs from the
development venv against the new interpreter (`pip --python`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

PLUGIN_PYPROJECT = """
[build-system]
requires = []
build-backend = "wheel_backend"
backend-path = ["."]

[project]
name = "syncline-uppercase"
version = "0.1.0"
requires-python = ">=3.11"

[project.entry-points."syncline.steps"]
uppercase = "syncline_uppercase:STEP"
"""

# A minimal PEP 517/660 backend (an editable wheel: a .pth to the source and the dist-info with the
# entry points), so installing needs no build packages and no index; any backend that writes the
# entry point (setuptools, hatchling, flit) does the same job for a real plugin.
PLUGIN_BACKEND = """
import base64, hashlib, os, zipfile

NAME, VERSION = "syncline_uppercase", "0.1.0"
DIST = f"{NAME}-{VERSION}.dist-info"
FILES = {
    f"{DIST}/METADATA": f"Metadata-Version: 2.1\\nName: syncline-uppercase\\nVersion: {VERSION}\\n",
    f"{DIST}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    f"{DIST}/entry_points.txt": "[syncline.steps]\\nuppercase = syncline_uppercase:STEP\\n",
}


def _wheel(directory, extra):
    files = {**FILES, **extra}
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as wheel:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
            wheel.writestr(path, data)
        wheel.writestr(f"{DIST}/RECORD", "\\n".join([*record, f"{DIST}/RECORD,,"]) + "\\n")
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {f"{NAME}.pth": os.path.abspath(os.path.dirname(__file__)) + "\\n"})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    source = open(os.path.join(os.path.dirname(__file__), NAME, "__init__.py")).read()
    return _wheel(wheel_directory, {f"{NAME}/__init__.py": source})
"""

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
    base = tmp_path_factory.mktemp("step-plugin")
    package = base / "plugin"
    (package / "syncline_uppercase").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (package / "wheel_backend.py").write_text(PLUGIN_BACKEND)
    (package / "syncline_uppercase" / "__init__.py").write_text(PLUGIN_MODULE)
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "syncline_dev.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-e",
            str(package),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return python


def _project(root: Path, flows: dict[str, str]) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: plugin-test\n")
    for name, text in flows.items():
        (root / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def _syncline(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(python), "-m", "runtime.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


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
