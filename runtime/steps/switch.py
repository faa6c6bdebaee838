"""`switch`: run the steps of the first case whose `when` holds (a case without `when` is the default)."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall, truthy
from runtime.spec.flow import SwitchStep


class SwitchHandler:
    kind = "switch"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, SwitchStep)
        cases = []
        for index, case in enumerate(step.switch):
            condition = compiler.expression(case.when, f"{compiled.id}.case{index}") if case.when else None
            cases.append((condition, compiler.steps(list(case.steps), (*compiled.loc, "switch", index, "steps"))))
        return {"cases": cases}

    async def execute(self, call: StepCall) -> Any:
        for index, (condition, steps) in enumerate(call.step.fields["cases"]):
            if condition is None or truthy(call.render(condition)):
                await call.executor.run_steps(steps, call.scope, call.state, prefix=call.prefix)
                return {"case": index}
        return {"case": None}


HANDLER = SwitchHandler()
