"""SL060: `syncline validate` warns about a `goto` loop no condition can leave (issue 8, item 2), and
only about those: a loop with any way out (an `if`, a deciding step, a step that can succeed past
the loop, an `on_error` that is not a `goto`) is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.compiler import check_project
from runtime.errors import Diagnostic

HEAD = """kind: Connection
name: erp
type: http
config: {base_url: "http://erp.example.com"}
operations:
  create: {method: POST, path: /things, body: "{{ params.body }}", entity: thing, effect: create}
---
kind: Flow
name: f
trigger: {manual: {}}
steps:
"""
FAILS_A = """  - id: a
    set: {x: "{{ 1/0 }}"}
    on_error: {goto: b}
"""
FAILS_B = """  - id: b
    set: {y: "{{ 1/0 }}"}
    on_error: {goto: a}
"""


def loops(tmp_path: Path, steps: str) -> list[Diagnostic]:
    path = tmp_path / "flow.yaml"
    path.write_text(HEAD + steps)
    result = check_project(path)
    assert not result.errors, "\n".join(d.text() for d in result.errors)
    return [d for d in result.diagnostics if d.code == "SL060"]


def test_two_steps_that_fail_into_each_other_warn_with_their_ids(tmp_path: Path) -> None:
    (found,) = loops(tmp_path, FAILS_A + FAILS_B)
    assert found.severity == "warning" and found.line == 14  # a's `goto`
    assert "`a`, `b`" in found.message and "10000 steps" in found.message
    assert found.hint is not None and "way out" in found.hint


LOOPS = {
    "a call that fails back into itself only after failing again": """  - id: a
    call: erp.create
    with: {body: 1}
    on_error: {goto: b}
"""
    + FAILS_B,
    "a constant set between two failing steps": FAILS_A.replace("goto: b", "goto: m")
    + """  - id: m
    set: {note: "looping"}
"""
    + FAILS_B.replace("- id: b", "- id: c"),
    "a step that fails into itself": """  - id: again
    set: {x: "{{ [1][5] + 1/0 }}"}
    on_error: {goto: again}
""",
    "a loop inside a foreach": """  - id: each
    foreach: "{{ input.items }}"
    steps:
"""
    + "".join("    " + line + "\n" for line in (FAILS_A + FAILS_B).splitlines()),
}


@pytest.mark.parametrize("steps", LOOPS.values(), ids=LOOPS.keys())
def test_loops_with_no_way_out_warn(tmp_path: Path, steps: str) -> None:
    assert len(loops(tmp_path, steps)) == 1


EXITS = {
    "an if on a step": FAILS_A + FAILS_B.replace("- id: b", '- id: b\n    if: "{{ input.retry }}"'),
    "a filter step in the loop": FAILS_A.replace("goto: b", "goto: f")
    + '  - id: f\n    filter: "{{ input.go }}"\n'
    + FAILS_B,
    "a switch step in the loop": FAILS_A.replace("goto: b", "goto: s")
    + """  - id: s
    switch:
      - when: "{{ input.more }}"
        steps: [{set: {n: 1}}]
"""
    + FAILS_B,
    "the last step can succeed": FAILS_A
    + """  - id: b
    call: erp.create
    with: {body: 1}
    on_error: {goto: a}
""",
    "a step whose success leads past the loop": FAILS_B
    + """  - id: a
    call: erp.create
    with: {body: 1}
    on_error: {goto: b}
  - id: done
    set: {ok: true}
""",
    "on_error continue": FAILS_A + FAILS_B.replace("{goto: a}", "continue"),
    "on_error fail (the default)": FAILS_A + FAILS_B.replace("    on_error: {goto: a}\n", ""),
    "on_error dead_letter": FAILS_A + FAILS_B.replace("{goto: a}", "dead_letter"),
    "a goto whose step depends on the input": FAILS_A + FAILS_B.replace("1/0", "1/input.n"),
    "a goto forward only": FAILS_A + "  - id: b\n    set: {y: 1}\n",
}


@pytest.mark.parametrize("steps", EXITS.values(), ids=EXITS.keys())
def test_loops_with_a_way_out_do_not_warn(tmp_path: Path, steps: str) -> None:
    assert loops(tmp_path, steps) == []
