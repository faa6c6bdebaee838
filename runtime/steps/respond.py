"""`respond`: the answer a synchronous webhook caller gets (status, body, headers)."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.spec.flow import RespondStep


class RespondHandler:
    kind = "respond"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, RespondStep)
        spec = step.respond
        return {
            "status": spec.status,
            "body": compiler.value(spec.body, f"{compiled.id}.body"),
            "headers": compiler.value(dict(spec.headers), f"{compiled.id}.headers"),
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        response = {
            "status": fields["status"],
            "body": call.render(fields["body"]),
            "headers": {str(k): str(v) for k, v in call.render(fields["headers"]).items()},
        }
        call.state.response = response
        call.executor.send_response(call.state.run.id, response)
        return response


HANDLER = RespondHandler()
