"""A run has a step budget (issue 8, item 2): `goto` loops, nested `foreach` items and the journal of
a resumed run count; past the budget the run is dead-lettered with `step_budget_exceeded`, whatever
the failing step's `on_error` says. Also through `syncline run`, and with the default budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.engine.executor import RunResult
from runtime.engine.plan import Plan
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]

LOOP = """
kind: Flow
name: loop
trigger: {manual: {}}
max_steps: 50
steps:
  - id: a
    set: {x: "{{ 1/0 }}"}
    on_error: {goto: b}
  - id: b
    set: {y: "{{ 1/0 }}"}
    on_error: {goto: a}
"""


async def run(h: Harness, flow: str, payload: object = None) -> RunResult:
    await h.store.open()
    result = await h.executor.run_flow(flow, payload if payload is not None else {})
    result.journal = await h.store.journal(result.run.id)
    return result


async def test_goto_loop_stops_at_the_flow_budget_and_is_dead_lettered(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    h = harness(make_plan(LOOP), {})
    result = await run(h, "loop")
    assert result.status == "dead_lettered"
    assert result.error is not None
    assert result.error["code"] == "step_budget_exceeded"
    assert result.error["reason"] == "step_budget"
    assert result.error["max_steps"] == 50 and result.error["flow"] == "loop"
    assert result.error["step"] == "a"  # steps 1..50 ran a, b, a, ...; the 51st would have been `a`
    message = result.error["message"]
    assert "'loop'" in message and "50" in message and "'a'" in message
    assert len(result.journal) == 50
    (letter,) = await h.store.list_dead_letters()
    assert letter.run_id == result.run.id and letter.reason.startswith("step_budget")
    stored = await h.store.get_run(result.run.id)
    assert stored is not None and stored.status == "dead_lettered" and stored.lease_owner is None


async def test_flow_that_sends_failures_to_fail_is_dead_lettered_too(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    h = harness(make_plan(LOOP.replace("max_steps: 50", "max_steps: 4\non_failure: fail")), {})
    result = await run(h, "loop")
    assert result.status == "dead_lettered" and result.error is not None
    assert result.error["code"] == "step_budget_exceeded"


async def test_foreach_items_count_and_on_error_of_the_foreach_does_not_catch_it(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: items
trigger: {manual: {}}
max_steps: 10
steps:
  - id: each
    foreach: "{{ input.items }}"
    steps:
      - id: one
        set: {v: "{{ item }}"}
      - id: two
        set: {w: "{{ item }}"}
    on_error: continue
  - id: after
    set: {done: true}
""")
    h = harness(plan, {})
    small = await run(h, "items", {"items": [1, 2, 3, 4]})  # 1 + 4 * 2 + 1 = 10 steps: within the budget
    assert small.status == "succeeded"
    big = await run(h, "items", {"items": [1, 2, 3, 4, 5]})  # the 11th step is each[4].two
    assert big.status == "dead_lettered" and big.error is not None
    assert big.error["code"] == "step_budget_exceeded" and big.error["step"] == "each[4].two"


async def test_default_budget_is_the_projects_and_ends_an_endless_loop(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    h = harness(make_plan(LOOP.replace("max_steps: 50\n", "")), {})
    assert h.executor.max_steps(h.executor.plan.flow("loop")) == 10_000
    result = await run(h, "loop")
    assert result.status == "dead_lettered" and result.error is not None
    assert result.error["max_steps"] == 10_000 and len(result.journal) == 10_000


async def test_project_default_applies_when_the_flow_sets_none(tmp_path: Path) -> None:
    from runtime.compiler import check_project
    from runtime.engine.plan import build_plan

    (tmp_path / "syncline.yaml").write_text("kind: Project\nname: p\ndefaults: {max_steps: 7}\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "loop.yaml").write_text(LOOP.replace("max_steps: 50\n", ""))
    plan = build_plan(check_project(tmp_path))
    h = Harness(plan, {})
    result = await run(h, "loop")
    assert result.status == "dead_lettered" and result.error is not None and result.error["max_steps"] == 7


def test_syncline_run_ends_the_loop_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    (tmp_path / "syncline.yaml").write_text("kind: Project\nname: p\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "loop.yaml").write_text(LOOP.replace("max_steps: 50", "max_steps: 20"))
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    code = main(["run", "loop", "--project", str(tmp_path), "--store", store, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    shown = json.loads(out)
    assert shown["run"]["status"] == "dead_lettered"
    assert shown["error"]["code"] == "step_budget_exceeded" and shown["error"]["max_steps"] == 20
    assert "Traceback" not in out + err
