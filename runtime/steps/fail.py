"""`fail`: end the run as a business exception with a code, routed to the owning team."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.engine.errors import BusinessException
from runtime.spec.flow import FailStep
from runtime.step_api import StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class FailHandler(StepHandler):
    """The `fail` step kind."""

    decides = True
    ends_run = True

    def graph_label(self, step: StepBase) -> str:
        assert isinstance(step, FailStep)
        return step.fail.code

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, FailStep)
        return {
            "code": step.fail.code,
            "message": compiler.value(step.fail.message, f"{compiled.id}.message"),
            "route_to": step.fail.route_to,
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        message = call.render(fields["message"])
        if not isinstance(message, str):  # a secret-marked message keeps its mark (masked when shown)
            message = str(message)
        raise BusinessException(fields["code"], message, fields["route_to"] or call.state.flow.model.owner)


HANDLER = FailHandler()
STEP = StepType("fail", FailStep, HANDLER, order=110)
