"""`validate`: check data against a JSON Schema; a mismatch fails the step (not retried)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.engine.errors import StepFailed
from runtime.spec.flow import ValidateSpec, ValidateStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class ValidateHandler(StepHandler):
    """The `validate` step kind."""

    effects = "pure"
    recomputable = True

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, ValidateStep)
        schema = step.validate_ if isinstance(step.validate_, str) else step.validate_.schema_
        return [Reference("schema", schema, ("validate",))]

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, ValidateStep)
        return step.validate_.data if isinstance(step.validate_, ValidateSpec) else None

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, ValidateStep)
        spec = step.validate_
        schema, data = (spec, "{{ input }}") if isinstance(spec, str) else (spec.schema_, spec.data)
        return {
            "schema": compiler.schema(schema),
            "schema_path": schema,
            "data": compiler.value(data, f"{compiled.id}.data"),
        }

    async def execute(self, call: StepCall) -> Any:
        data = call.render(call.step.fields["data"])
        call.input = data
        errors = sorted(call.step.fields["schema"].iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            raise StepFailed(
                f"data does not match {call.step.fields['schema_path']} at {where}: {first.message}",
                reason="validation",
            )
        return {"valid": True}


HANDLER = ValidateHandler()
STEP = StepType("validate", ValidateStep, HANDLER, order=10)
