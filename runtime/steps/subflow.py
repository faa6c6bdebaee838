"""`flow`: run another flow inline with the given input and use its output.

The sub-flow's steps are journaled under `<step>/` in the same run, so resuming and replaying work
across the boundary; a chain deeper than the project's `hop_limit` fails instead of recursing.
"""

from __future__ import annotations

from typing import Any

from runtime.engine.context import StepCall
from runtime.engine.errors import StepFailed
from runtime.spec.flow import SubflowStep


class SubflowHandler:
    kind = "flow"

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
