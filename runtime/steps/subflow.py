"""`flow`: run another flow inline with the given input and use its output.

The sub-flow's steps are journaled under `<step>/` in the same run, so resuming and replaying work
across the boundary; a chain deeper than the project's `hop_limit` fails instead of recursing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.engine.errors import StepFailed
from runtime.spec.flow import SubflowStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class SubflowHandler(StepHandler):
    """The `flow` step kind."""

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, SubflowStep)
        return [Reference("flow", step.flow, ("flow",))]

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, SubflowStep)
        return step.with_

    def graph_label(self, step: StepBase) -> str:
        assert isinstance(step, SubflowStep)
        return step.flow

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, SubflowStep)
        return {"flow": step.flow, "input": compiler.value(step.with_, f"{compiled.id}.with")}

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        value = call.render(fields["input"])
        call.input = value
        depth = call.key.count("/") + 1
        if depth > call.executor.plan.project.defaults.hop_limit:
            raise StepFailed(f"sub-flow chain deeper than hop_limit ({depth})", reason="hop_limit")
        flow = call.executor.plan.flow(fields["flow"])
        return await call.executor.run_subflow(flow, value, call)


HANDLER = SubflowHandler()
STEP = StepType("flow", SubflowStep, HANDLER, order=140)
