"""`set`: set variables (`vars.<name>`); the step's output is the values it set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.spec.flow import SetStep
from runtime.step_api import Resume, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class SetHandler(StepHandler):
    """The `set` step kind."""

    effects = "pure"
    recomputable = True

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, SetStep)
        return step.set

    def succeeds_when_constant(self, step: StepBase) -> bool:
        return True

    def restore(self, output: Any, resume: Resume) -> None:
        if isinstance(output, dict):
            resume.set_vars(output)

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, SetStep)
        return {"values": compiler.value(dict(step.set), f"{compiled.id}.set")}

    async def execute(self, call: StepCall) -> Any:
        values = call.render(call.step.fields["values"])
        call.state.vars.update(values)
        return values


HANDLER = SetHandler()
STEP = StepType("set", SetStep, HANDLER, order=30)
