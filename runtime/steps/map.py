"""`map`: transform data with a Mapping (by name or file) or a JSON template under mappings/."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.spec.flow import MapStep


class MapHandler:
    kind = "map"

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
