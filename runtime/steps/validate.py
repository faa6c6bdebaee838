"""`validate`: check data against a JSON Schema; a mismatch fails the step (not retried)."""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.engine.errors import StepFailed
from runtime.spec.flow import ValidateStep


class ValidateHandler:
    kind = "validate"

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
