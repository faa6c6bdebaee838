"""`map`: transform data with a Mapping (by name or file) or a JSON template under mappings/."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.spec.flow import MapStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class MapHandler(StepHandler):
    """The `map` step kind."""

    effects = "pure"
    recomputable = True

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, MapStep)
        return [Reference("mapping", step.map, ("map",))]

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, MapStep)
        return step.input

    def graph_label(self, step: StepBase) -> str:
        assert isinstance(step, MapStep)
        return step.map

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, MapStep)
        return {
            "mapping": compiler.mapping(step.map),
            "input": compiler.value(step.input, f"{compiled.id}.input") if step.input is not None else None,
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        value = call.render(fields["input"]) if fields["input"] is not None else call.scope["input"]
        call.input = value
        return fields["mapping"](value, call.scope)


HANDLER = MapHandler()
STEP = StepType("map", MapStep, HANDLER, order=20)
