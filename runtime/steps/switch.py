"""`switch`: run the steps of the first case whose `when` holds (a case without `when` is the default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.spec.flow import SwitchStep
from runtime.step_api import ChildSteps, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class SwitchHandler(StepHandler):
    """The `switch` step kind."""

    effects = "pure"
    recomputable = True
    decides = True
    branch_id = "case"

    def children(self, step: StepBase) -> Sequence[ChildSteps]:
        assert isinstance(step, SwitchStep)
        return [
            ChildSteps(
                case.steps,
                ("switch", index, "steps"),
                label="else" if case.when is None else f"case {index + 1}",
                default=case.when is None,
            )
            for index, case in enumerate(step.switch)
        ]

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, SwitchStep)
        cases = []
        for index, case in enumerate(step.switch):
            condition = compiler.expression(case.when, f"{compiled.id}.case{index}") if case.when else None
            cases.append((condition, compiler.steps(list(case.steps), (*compiled.loc, "switch", index, "steps"))))
        return {"cases": cases}

    async def execute(self, call: StepCall) -> Any:
        from runtime.engine.context import truthy

        for index, (condition, steps) in enumerate(call.step.fields["cases"]):
            if condition is None or truthy(call.render(condition)):
                await call.executor.run_steps(steps, call.scope, call.state, prefix=call.prefix)
                return {"case": index}
        return {"case": None}


HANDLER = SwitchHandler()
STEP = StepType("switch", SwitchStep, HANDLER, order=50)
