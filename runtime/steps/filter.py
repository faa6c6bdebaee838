"""`filter`: stop the run (status `filtered`) unless the condition holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.engine.errors import RunFiltered
from runtime.spec.flow import FilterStep
from runtime.step_api import Resume, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class FilterHandler(StepHandler):
    """The `filter` step kind."""

    effects = "pure"
    recomputable = True
    decides = True
    condition_keys = frozenset({"filter"})

    def restore(self, output: Any, resume: Resume) -> None:
        if isinstance(output, dict) and output.get("filtered"):
            resume.stop_filtered()

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, FilterStep)
        return {"condition": compiler.expression(step.filter, f"{compiled.id}.filter")}

    async def execute(self, call: StepCall) -> Any:
        from runtime.engine.context import truthy

        if not truthy(call.render(call.step.fields["condition"])):
            raise RunFiltered(f"filtered by step {call.step.id!r}")
        return {"passed": True}


HANDLER = FilterHandler()
STEP = StepType("filter", FilterStep, HANDLER, order=60)
