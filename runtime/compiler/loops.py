"""`goto` loops no condition can leave (SL060, a warning).

`on_error: {goto: ID}` jumps back or forth within the block of steps the failing step belongs to
(the flow's steps, a `switch` case's, a `foreach`'s). Steps that fail into each other would repeat
until the run's step budget ends it. Within each block this check follows what can happen after a
step: its success goes on to the next step (or out of the block after the last); its failure goes
where `on_error` says (`goto`: that step; `continue`: the next; `fail`, `dead_letter`: out). A set
of steps is a loop no condition can leave when every way out of each of its steps leads back into
the set. Anything that might decide otherwise is a way out:

- an `if` on a step, and the steps that decide by a condition or end or suspend the run
  (`switch`, `filter`, `fail`, `wait`);
- a step's success, unless the step cannot succeed: it evaluates a constant expression that fails
  (`{{ 1/0 }}`) in what it renders first (`set`'s values, `call`'s `with`, ...);
- a step's failure, unless the step cannot fail (a `set` of constants that evaluate).

So only loops that run for ever whatever the data are reported, with their step ids. What a step
does here is what its kind declares (runtime/step_api.py): `decides`, `rendered_first`,
`succeeds_when_constant` and its `children` (the blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import step_id
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import Flow, GotoAction, StepBase
from runtime.spec.yamlload import Loc
from runtime.step_registry import step_type_of


def check_goto_loops(ctx: CheckContext, doc: ParsedDocument) -> None:
    """Report every `goto` loop of the flow no condition can leave (SL060)."""
    flow: Flow = doc.model
    for steps, base in _blocks(list(flow.steps), ("steps",)):
        ids = [step_id(step, (*base, index)) for index, step in enumerate(steps)]
        for loop in _closed_loops(ctx, steps, ids):
            first = loop[0]
            named = ", ".join(f"`{ids[i]}`" for i in loop)
            budget = flow.max_steps or ctx.docs.project.defaults.max_steps
            ctx.report(
                doc,
                "SL060",
                f"steps {named} form a `goto` loop no condition can leave: each fails into the next, "
                f"so a run repeats them until its step budget ({budget} steps) dead-letters it",
                (*base, first, "on_error", "goto") if isinstance(steps[first].on_error, GotoAction) else (*base, first),
                hint="give the loop a way out: an `if`, a `switch` or `filter` step, an `on_error` other than "
                "`goto`, or a step that can succeed past the loop",
            )


def _blocks(steps: list[StepBase], base: Loc) -> list[tuple[list[StepBase], Loc]]:
    """The flow's step lists: its own, each `switch` case's and each `foreach`'s, with their locations."""
    found = [(steps, base)]
    for index, step in enumerate(steps):
        loc = (*base, index)
        for child in step_type_of(step).handler.children(step):
            found.extend(_blocks(list(child.steps), (*loc, *child.at)))
    return found


def _closed_loops(ctx: CheckContext, steps: Sequence[StepBase], ids: Sequence[str]) -> list[list[int]]:
    """Sets of step positions (each in document order) reachable from the block's first step that
    nothing leads out of and that loop; `len(steps)` stands for "out of the block"."""
    out = len(steps)
    edges = [_successors(ctx, steps, ids, index) for index in range(len(steps))]
    leaves = {out}  # positions from which the way out can be reached
    changed = True
    while changed:
        changed = False
        for index, targets in enumerate(edges):
            if index not in leaves and targets & leaves:
                leaves.add(index)
                changed = True
    reachable = _reach(edges, 0, out)
    trapped = [i for i in range(len(steps)) if i not in leaves and i in reachable]
    loops: list[list[int]] = []
    seen: set[int] = set()
    for index in trapped:
        if index in seen:
            continue
        ahead = _reach(edges, index, out)
        loop = sorted(j for j in ahead if index in _reach(edges, j, out))
        # a loop nothing trapped leads out of (a step on the way into a loop is not part of it)
        if index in loop and all(edges[j] <= set(loop) for j in loop):
            loops.append(loop)
            seen.update(loop)
    return loops


def _reach(edges: list[set[int]], start: int, out: int) -> set[int]:
    """Positions reachable from `start` in one step or more (`out` has no successors)."""
    found: set[int] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node == out:
            continue
        for target in edges[node]:
            if target not in found:
                found.add(target)
                stack.append(target)
    return found


def _successors(ctx: CheckContext, steps: Sequence[StepBase], ids: Sequence[str], index: int) -> set[int]:
    """Where a run can go after the step at `index`: positions in the block, `len(steps)` for out."""
    step = steps[index]
    out = len(steps)
    after = index + 1
    if step.if_ is not None or step_type_of(step).handler.decides:
        return {after, out}
    outcome = _certain_outcome(ctx, step)
    targets: set[int] = set()
    if outcome != "fails":
        targets.add(after)  # success: the next step, or out of the block after the last
    if outcome != "succeeds":
        action = step.on_error
        if isinstance(action, GotoAction):
            # as the executor: the first step of the block with that id; one in another block fails the run
            targets.add(ids.index(action.goto) if action.goto in ids else out)
        elif action == "continue":
            targets.add(after)
        else:
            targets.add(out)
    return targets


def _certain_outcome(ctx: CheckContext, step: StepBase) -> str | None:
    """ "fails" when the step evaluates a failing constant before anything else, "succeeds" for a
    `set` of constants that evaluate; None when the data decides."""
    values = _rendered_first(step)
    verdicts = [_constant_fails(ctx, value) for value in values]
    if any(verdict is True for verdict in verdicts):
        return "fails"
    succeeds = step_type_of(step).handler.succeeds_when_constant(step)
    if succeeds and verdicts and all(verdict is False for verdict in verdicts):
        return "succeeds"
    return None


def _rendered_first(step: StepBase) -> list[Any]:
    """The values a step renders before it does anything else (each top-level entry separately)."""
    value = step_type_of(step).handler.rendered_first(step)
    if isinstance(value, dict):
        return list(value.values())
    return [] if value is None else [value]


def _constant_fails(ctx: CheckContext, value: Any) -> bool | None:
    """True when `value` is a constant whose evaluation fails, False when it is a constant that
    evaluates, None when it depends on the run (or does not compile: reported elsewhere)."""
    try:
        compiled = ctx.engine.compile(value, name="goto-loop")
    except Exception:
        return None
    if not compiled.is_constant:
        return None
    try:
        compiled.render({})
    except Exception:
        return True
    return False
