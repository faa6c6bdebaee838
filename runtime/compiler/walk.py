"""Walking the steps of a flow, nested branches included, with each step's location in the file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from runtime.spec.flow import Flow, ForeachStep, StepBase, SwitchStep, kind_of_step
from runtime.spec.yamlload import Loc


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
        elif part == "switch" and i + 1 < len(loc):
            parts.append(f"case{loc[i + 1]}")
        elif part == "compensate":
            parts.append("compensate")
    return "_".join(parts) or "step"


def iter_steps(flow: Flow) -> Iterator[StepRef]:
    """Every step of the flow in document order, compensations right after their step."""
    counter = [0]
    yield from _walk(flow.steps, ("steps",), counter, False)


def _walk(steps: Sequence[StepBase], base: Loc, counter: list[int], comp: bool) -> Iterator[StepRef]:
    for index, step in enumerate(steps):
        loc = (*base, index)
        ref = StepRef(step, loc, step_id(step, loc), kind_of_step(step), counter[0], comp)
        counter[0] += 1
        yield ref
        if isinstance(step, SwitchStep):
            for case_index, case in enumerate(step.switch):
                yield from _walk(case.steps, (*loc, "switch", case_index, "steps"), counter, comp)
        elif isinstance(step, ForeachStep):
            yield from _walk(step.steps, (*loc, "steps"), counter, comp)
        if step.compensate is not None:
            comp_loc = (*loc, "compensate")
            comp_step = step.compensate
            yield StepRef(comp_step, comp_loc, f"{ref.id}_compensate", kind_of_step(comp_step), counter[0], True)
            counter[0] += 1
