"""`filter`: stop the run (status `filtered`) unless the condition holds."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall, truthy
from runtime.engine.errors import RunFiltered
from runtime.spec.flow import FilterStep


class FilterHandler:
    kind = "filter"

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, FilterStep)
        return {"condition": compiler.expression(step.filter, f"{compiled.id}.filter")}

    async def execute(self, call: StepCall) -> Any:
        if not truthy(call.render(call.step.fields["condition"])):
            raise RunFiltered(f"filtered by step {call.step.id!r}")
        return {"passed": True}


HANDLER = FilterHandler()
