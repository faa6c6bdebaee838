"""`wait`: pause the run until a matching event arrives or the timeout passes.

The executor stores the run as `waiting` with its deadline; the service resumes it when an event
with the awaited name matches (`event` is in scope for `match`), or on timeout per `on_timeout`.
When the run resumes, the event it was given is the step's output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.engine.errors import RunSuspended, StepFailed
from runtime.spec.common import parse_duration
from runtime.spec.flow import WaitStep
from runtime.step_api import StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class WaitHandler(StepHandler):
    """The `wait` step kind."""

    decides = True

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, WaitStep)
        spec = step.wait
        return {
            "event": spec.event,
            "timeout": parse_duration(spec.timeout),
            "on_timeout": spec.on_timeout,
            "match": compiler.expression(spec.match, f"{compiled.id}.match") if spec.match else None,
        }

    async def execute(self, call: StepCall) -> Any:
        from runtime.engine.context import truthy

        fields = call.step.fields
        waits = call.state.run.meta.get("waits", {})
        mine = waits.get(call.key)
        now = call.executor.clock.time()
        for event in call.state.delivered_events:
            if event.get("name") == fields["event"] and (
                fields["match"] is None or truthy(call.render(fields["match"], {"event": event.get("data")}))
            ):
                return event.get("data")
        if mine is not None and now >= mine["deadline"]:
            if fields["on_timeout"] == "continue":
                return None
            raise StepFailed(
                f"no {fields['event']!r} event within the timeout", reason="wait_timeout", error_class="fatal"
            )
        deadline = mine["deadline"] if mine is not None else now + fields["timeout"]
        raise RunSuspended(
            "waiting",
            due_at=deadline,
            reason=f"waiting for event {fields['event']!r}",
            meta={"waits": {**waits, call.key: {"event": fields["event"], "deadline": deadline}}},
        )


HANDLER = WaitHandler()
STEP = StepType("wait", WaitStep, HANDLER, order=90)
