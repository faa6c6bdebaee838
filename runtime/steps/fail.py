"""`fail`: end the run as a business exception with a code, routed to the owning team."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.engine.errors import BusinessException
from runtime.spec.flow import FailStep


class FailHandler:
    kind = "fail"

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
