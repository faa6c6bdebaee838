"""Every built-in step kind comes through the `syncline.steps` entry points and keeps the step plugin
contract (runtime/step_api.py): its key is its model's field, its declarations are consistent, and
every position it declares (children, references, JSONPath fields) points at what it names in a real
step of that kind (the reference docs' examples). Plus the registry's refusals of malformed kinds."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic import Field

from runtime.compiler import document_kinds
from runtime.plugins import default_registry
from runtime.spec.documents import parse_document
from runtime.spec.examples import STEP_EXAMPLES
from runtime.spec.flow import STEP_KINDS, StepBase
from runtime.spec.yamlload import load_text
from runtime.step_api import ChildSteps, Finding, Reference, StepHandler, StepType
from runtime.step_registry import StepPluginError, StepRegistry, default_step_registry

BUILT_IN = [
    "validate",
    "map",
    "set",
    "call",
    "switch",
    "filter",
    "foreach",
    "emit",
    "wait",
    "transition",
    "fail",
    "respond",
    "reconcile",
    "flow",
]


def _example_step(key: str) -> StepBase:
    kinds = document_kinds(default_registry())
    for text in STEP_EXAMPLES[key]:
        for doc in load_text(text, f"example {key}"):
            parsed, diagnostics = parse_document(doc, kinds)
            assert parsed is not None, [d.text() for d in diagnostics]
            for step in parsed.model.steps:
                if STEP_KINDS.get(key) is type(step):
                    return step  # type: ignore[no-any-return]
    raise AssertionError(f"no example of step {key}")


def _at(data: Any, loc: tuple[str | int, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


def test_the_built_in_kinds_are_the_registered_entry_points_in_their_documented_order() -> None:
    ours = {ep.name: ep.value for ep in entry_points(group="syncline.steps") if ep.value.startswith("runtime.")}
    assert sorted(ours) == sorted(BUILT_IN)
    keys = [key for key in default_step_registry().names() if key in BUILT_IN]
    assert keys == BUILT_IN
    assert [key for key in STEP_KINDS if key in BUILT_IN] == BUILT_IN


@pytest.mark.parametrize("key", BUILT_IN)
def test_a_built_in_step_type_keeps_the_contract(key: str) -> None:
    step_type = default_step_registry().get(key)
    assert isinstance(step_type, StepType)
    assert step_type.key == key
    assert STEP_KINDS[key] is step_type.model
    assert issubclass(step_type.model, StepBase)
    aliases = {field.alias or name for name, field in step_type.model.model_fields.items()}
    assert key in aliases
    handler = step_type.handler
    assert isinstance(handler, StepHandler)
    assert type(handler).compile is not StepHandler.compile
    assert type(handler).execute is not StepHandler.execute
    assert handler.effects in ("pure", "side_effects")
    assert not handler.recomputable or handler.effects == "pure"
    assert not handler.ends_run or handler.decides  # a step that ends the run decides where it goes

    step = _example_step(key)
    data = step.model_dump(by_alias=True)
    children = handler.children(step)
    assert all(isinstance(child, ChildSteps) for child in children)
    for child in children:
        assert child.role in ("branch", "loop")
        listed = _at(data, child.at)
        assert isinstance(listed, list) and len(listed) == len(child.steps)
    for reference in handler.references(step):
        assert isinstance(reference, Reference)
        assert _at(data, reference.at) == reference.name
        if reference.kind == "state":
            assert reference.machine
    for at, path in handler.jsonpaths(step):
        assert _at(data, at) == path
    assert all(isinstance(finding, Finding) for finding in handler.check(step, "s0"))
    assert isinstance(handler.graph_label(step), str)
    rendered = handler.rendered_first(step)
    assert rendered is None or rendered in _values(data)


def _values(data: Any) -> list[Any]:
    found = [data]
    if isinstance(data, dict):
        for value in data.values():
            found.extend(_values(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(_values(value))
    return found


def test_the_kinds_that_run_steps_declare_them() -> None:
    registry = default_step_registry()
    assert [c.role for c in registry.of(_example_step("foreach")).handler.children(_example_step("foreach"))] == [
        "loop"
    ]
    switch = _example_step("switch")
    cases = registry.of(switch).handler.children(switch)
    assert [(c.at, c.label, c.default) for c in cases] == [
        (("switch", 0, "steps"), "case 1", False),
        (("switch", 1, "steps"), "else", True),
    ]
    for key in set(BUILT_IN) - {"switch", "foreach"}:
        step = _example_step(key)
        assert registry.of(step).handler.children(step) == ()


# ------------------------------------------------------------------------------------ the registry


class _Shout(StepBase):
    shout: str = Field(description="Text.")


class _Handler(StepHandler):
    async def execute(self, call: Any) -> Any:
        return None


def test_the_registry_refuses_malformed_step_kinds() -> None:
    registry = StepRegistry([StepType("shout", _Shout, _Handler())])
    assert registry.names() == ["shout"]
    with pytest.raises(StepPluginError, match="registered twice"):
        registry.register(StepType("shout", _Shout, _Handler()))
    with pytest.raises(StepPluginError, match="has no field 'whisper'"):
        StepRegistry([StepType("whisper", _Shout, _Handler())])
    with pytest.raises(StepPluginError, match="common step key"):
        StepRegistry([StepType("retry", _Shout, _Handler())])
    with pytest.raises(StepPluginError, match="must extend StepBase"):
        StepRegistry([StepType("shout", dict, _Handler())])  # type: ignore[arg-type]
    with pytest.raises(StepPluginError, match=r"must extend runtime\.step_api\.StepHandler"):
        StepRegistry([StepType("shout", _Shout, object())])  # type: ignore[arg-type]
    with pytest.raises(StepPluginError, match="is not a StepType"):
        StepRegistry(["shout"])  # type: ignore[list-item]


def test_plugins_follow_the_built_ins_unless_they_say_where() -> None:
    class _Early(StepBase):
        early: str

    registry = StepRegistry(
        [
            StepType("shout", _Shout, _Handler()),
            StepType("early", _Early, _Handler(), order=5),
            *default_step_registry(),
        ]
    )
    keys = registry.names()
    assert keys[0] == "early" and keys[-1] == "shout"
    assert keys[1:-1] == BUILT_IN


@pytest.mark.parametrize(
    "module", ["runtime.steps.call", "runtime.step_api", "runtime.policy.guard", "runtime.engine.executor"]
)
def test_any_module_may_be_imported_first(module: str) -> None:
    """The flow model loads the step kinds when first imported; a step module (or one it uses) imported
    before it must not be loaded half-initialised."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"import {module}; from runtime.spec.flow import STEP_KINDS; print(len(STEP_KINDS))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= len(BUILT_IN)


def test_loading_the_step_kinds_reaches_no_store_service_or_network_code() -> None:
    """The flow model (runtime/spec/) loads every step kind; what they import at module level must keep
    spec/ and compiler/ free of store, service, connector and network code (tests/test_layering.py
    checks the static imports; this checks what loading the registered kinds really imports)."""
    import subprocess
    import sys

    probe = (
        "import sys, runtime.spec.flow, runtime.compiler\n"
        "bad = ('runtime.store', 'runtime.service', 'runtime.commands', 'connectors', 'httpx', 'aiohttp',"
        " 'sqlalchemy', 'uvicorn', 'starlette')\n"
        "print(sorted(m for m in sys.modules if m.startswith(bad)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
