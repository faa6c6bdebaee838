"""Walking the steps of a flow, nested branches included, with each step's location in the file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from runtime.spec.flow import Flow, StepBase
from runtime.spec.yamlload import Loc
from runtime.step_registry import default_step_registry, step_type_of


@dataclass(frozen=True)
class StepRef:
    """One step of a flow: where it is, its effective id and its order in the flow."""

    step: StepBase
    loc: Loc
    id: str
    kind: str
    order: int
    is_compensation: bool = False


def step_id(step: StepBase, loc: Loc) -> str:
    """The step's declared id, or one derived from its position (`s2`, `s1_switch0_s0`)."""
    if step.id:
        return step.id
    parts: list[str] = []
    for i, part in enumerate(loc):
        if part == "steps" and i + 1 < len(loc):
            parts.append(f"s{loc[i + 1]}")
        elif isinstance(part, str) and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            segment = _branch_segments().get(part)
            if segment is not None:
                parts.append(f"{segment}{loc[i + 1]}")
        elif part == "compensate":
            parts.append("compensate")
    return "_".join(parts) or "step"


def _branch_segments() -> dict[str, str]:
    """Location keys of numbered branch lists (a step's key, e.g. `switch`) and the word their index
    takes in derived step ids (`case`)."""
    registry = default_step_registry()
    return {t.key: t.handler.branch_id for t in registry if t.handler.branch_id}


def iter_steps(flow: Flow) -> Iterator[StepRef]:
    """Every step of the flow in document order, compensations right after their step."""
    counter = [0]
    yield from _walk(flow.steps, ("steps",), counter, False)


def _walk(steps: Sequence[StepBase], base: Loc, counter: list[int], comp: bool) -> Iterator[StepRef]:
    for index, step in enumerate(steps):
        loc = (*base, index)
        step_type = step_type_of(step)
        ref = StepRef(step, loc, step_id(step, loc), step_type.key, counter[0], comp)
        counter[0] += 1
        yield ref
        for child in step_type.handler.children(step):
            yield from _walk(child.steps, (*loc, *child.at), counter, comp)
        if step.compensate is not None:
            comp_loc = (*loc, "compensate")
            comp_step = step.compensate
            comp_kind = step_type_of(comp_step).key
            yield StepRef(comp_step, comp_loc, f"{ref.id}_compensate", comp_kind, counter[0], True)
            counter[0] += 1
