"""A connector with a source, a trigger kind and a step kind from one outside package (built and
installed into a fresh venv by tests/plugin_package.py), run by `syncline serve`'s Service in a flow —
with no change to Syncline. The trigger kind's source takes its events from the plugin connector's
live connector (`SourceContext.connector()`), and each event becomes one run that calls the same
connector through an operation and uses the plugin step."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.plugin_package import install_plugin, run_in

PLUGIN = '''
"""syncline-counter: a `counter` connector (a number line you can read and bump), a `countdown`
trigger kind that takes `count` numbers from a counter connection, and a `double` step kind."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from runtime.connector_api import CallRequest, CallResult, ConnectorType, OperationSpec
from runtime.source_api import SourceContext, SourceEvent, TriggerType
from runtime.spec.common import Model
from runtime.step_api import StepBase, StepHandler, StepType


class CounterConfig(BaseModel):
    start: int = Field(1, description="The first number.")


class CounterOperation(OperationSpec):
    pass


class LiveCounter:
    def __init__(self, start: int) -> None:
        self.start = start
        self.bumped: list[Any] = []

    def numbers(self, count: int) -> list[int]:
        return list(range(self.start, self.start + count))

    async def call(self, request: CallRequest) -> CallResult:
        self.bumped.append(request.params.get("value"))
        return CallResult({"bumped": request.params.get("value"), "total": len(self.bumped)})

    async def aclose(self) -> None:
        pass


CONNECTOR = ConnectorType(
    name="counter",
    description="A number line.",
    config_model=CounterConfig,
    operation_model=CounterOperation,
    create=lambda config, operations, context: LiveCounter(config.start),
)


class CountdownSpec(Model):
    """Take `count` numbers from a counter connection; each becomes one run."""

    connection: str = Field(description="The counter connection.")
    count: int = Field(3, ge=1, description="How many numbers.")


class Countdown:
    def __init__(self, spec: CountdownSpec) -> None:
        self.spec = spec

    async def run(self, ctx: SourceContext) -> None:
        counter = await ctx.connector()
        events = [SourceEvent({"n": n}, key=f"n-{n}") for n in counter.numbers(self.spec.count)]
        await ctx.ready()
        await ctx.accept(events)
        ctx.progressed()
        await asyncio.Event().wait()  # nothing more to take; runs until stopped


TRIGGER = TriggerType(
    key="countdown",
    model=CountdownSpec,
    description="Numbers from a counter.",
    source=Countdown,
    connection_field="connection",
    explain=lambda spec: {"connection": spec.connection, "count": spec.count},
)


class DoubleStep(StepBase):
    """Double a number."""

    double: str = Field(description="The number (a template).")


class DoubleHandler(StepHandler):
    effects = "pure"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        return {"value": compiler.value(step.double, f"{compiled.id}.double")}

    async def execute(self, call: Any) -> Any:
        return int(call.render(call.step.fields["value"])) * 2


STEP = StepType("double", DoubleStep, DoubleHandler())
'''

PROJECT = {
    "syncline.yaml": "kind: Project\nname: counter-test\n",
    "systems/ctr.yaml": """
        kind: Connection
        name: ctr
        type: counter
        config: {start: 20}
        operations:
          bump: {effect: command, entity: tally}
    """,
    "flows/tally.yaml": """
        kind: Flow
        name: tally
        trigger:
          countdown: {connection: ctr, count: 3}
        steps:
          - id: twice
            double: "{{ input.n }}"
          - id: bump
            call: ctr.bump
            with: {value: "{{ steps.twice.output }}"}
    """,
}

SERVE = """
import asyncio, json, sys
from pathlib import Path
from runtime.service.service import Service
from runtime.store.base import RunFilter

async def main() -> None:
    service = Service(Path(sys.argv[1]), f"sqlite:///{sys.argv[2]}")
    await service.start()
    try:
        for _ in range(1000):
            runs = await service.store.list_runs(RunFilter(flow="tally", limit=10))
            if len(runs) == 3 and all(r.status == "succeeded" for r in runs):
                break
            await asyncio.sleep(0.02)
        counter = await service.executor(service.plan).connectors.get("ctr")
        report = {
            "runs": sorted((r.input["n"], r.status, r.trigger) for r in runs),
            "bumped": sorted(counter.bumped),
            "source": [(h.flow.name, h.kind.key) for h in service.sources],
        }
    finally:
        await service.stop(grace=5)
    print(json.dumps(report))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(
        tmp_path_factory.mktemp("counter-plugin"),
        "syncline-counter",
        "syncline_counter",
        {
            "syncline.connectors": {"counter": "syncline_counter:CONNECTOR"},
            "syncline.triggers": {"countdown": "syncline_counter:TRIGGER"},
            "syncline.steps": {"double": "syncline_counter:STEP"},
        },
        PLUGIN,
    )


def _project(root: Path) -> Path:
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_the_plugin_kind_is_not_in_the_development_venv(tmp_path: Path) -> None:
    from runtime.compiler import check_project

    diagnostics = check_project(_project(tmp_path / "p")).errors
    texts = [d.text() for d in diagnostics]
    assert any("no installed package provides the trigger kind 'countdown'" in t for t in texts), texts


def test_a_plugin_connector_source_and_step_run_a_flow_in_the_service(plugin_python: Path, tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    checked = run_in(plugin_python, "-m", "runtime.cli", "validate", str(root), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    explained = run_in(plugin_python, "-m", "runtime.cli", "explain", "tally", "--project", str(root), cwd=tmp_path)
    assert explained.returncode == 0 and "countdown" in explained.stdout, explained.stdout + explained.stderr

    (tmp_path / "serve.py").write_text(SERVE)
    served = run_in(plugin_python, str(tmp_path / "serve.py"), str(root), str(tmp_path / "runs.db"), cwd=tmp_path)
    assert served.returncode == 0, served.stdout + served.stderr
    report = json.loads(served.stdout.strip().splitlines()[-1])
    assert report["source"] == [["tally", "countdown"]]
    assert report["runs"] == [
        [20, "succeeded", "countdown"],
        [21, "succeeded", "countdown"],
        [22, "succeeded", "countdown"],
    ]
    assert report["bumped"] == [40, 42, 44]
