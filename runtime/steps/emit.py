"""`emit`: an internal event, stored in the same transaction as the step that emits it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.spec.flow import EmitStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class EmitHandler(StepHandler):
    """The `emit` step kind."""

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, EmitStep)
        return [Reference("event", step.emit.event, ("emit", "event"))]

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, EmitStep)
        return step.emit.data

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, EmitStep)
        spec = step.emit
        return {
            "event": spec.event,
            "data": compiler.value(spec.data, f"{compiled.id}.data"),
            "key": compiler.value(spec.key, f"{compiled.id}.key") if spec.key else None,
        }

    async def execute(self, call: StepCall) -> Any:
        from runtime.store.base import EventRecord

        fields = call.step.fields
        data = call.render(fields["data"])
        key = call.render(fields["key"]) if fields["key"] is not None else None
        call.events.append(
            EventRecord(
                name=fields["event"],
                data=data,
                key=None if key is None else str(key),
                source_run_id=call.state.run.id,
                source_step=call.key,
            )
        )
        return {"event": fields["event"], "data": data}


HANDLER = EmitHandler()
STEP = StepType("emit", EmitStep, HANDLER, order=80)
