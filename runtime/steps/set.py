"""`set`: set variables (`vars.<name>`); the step's output is the values it set."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.spec.flow import SetStep


class SetHandler:
    kind = "set"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, SetStep)
        return {"values": compiler.value(dict(step.set), f"{compiled.id}.set")}

    async def execute(self, call: StepCall) -> Any:
        values = call.render(call.step.fields["values"])
        call.state.vars.update(values)
        return values


HANDLER = SetHandler()
