"""`respond`: the answer a synchronous webhook caller gets (status, body, headers).

Header names must be HTTP tokens and values may not hold CR, LF or other control characters
(`runtime/http_headers.py`: they would split the response, and the caller got an empty reply).
Literal ones are refused by validate (SL045); a value rendered from data is checked here: the step
fails with the header named (never its value), and the caller is answered 500 with the run's location.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.engine.errors import StepFailed
from runtime.http_headers import header_problem, literal_header_problem
from runtime.spec.flow import RespondStep
from runtime.step_api import Finding, Resume, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class RespondHandler(StepHandler):
    """The `respond` step kind."""

    effects = "pure"
    recomputable = False  # the answer already went out: restored, never computed again

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, RespondStep)
        return step.respond.body

    def check(self, step: StepBase, step_id: str) -> Sequence[Finding]:
        """A header whose name, or whose value's literal text, cannot be sent (SL045)."""
        assert isinstance(step, RespondStep)
        found = []
        for name, value in step.respond.headers.items():
            problem = literal_header_problem(str(name), str(value))
            if problem is not None:
                found.append(Finding("SL045", f"step {step_id!r}: {problem}", ("respond", "headers", name)))
        return found

    def restore(self, output: Any, resume: Resume) -> None:
        if isinstance(output, dict):
            resume.set_response(output)

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, RespondStep)
        spec = step.respond
        return {
            "status": spec.status,
            "body": compiler.value(spec.body, f"{compiled.id}.body"),
            "headers": compiler.value(dict(spec.headers), f"{compiled.id}.headers"),
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        headers = {str(k): str(v) for k, v in call.render(fields["headers"]).items()}
        run_id = call.state.run.id
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem is not None:
                message = f"respond: {problem}"
                location = f"/api/v1/runs/{run_id}"
                # problem details as the service writes them (runtime/service/problems.py, which the
                # engine's layer may not import)
                body = {
                    "type": "urn:syncline:problem:invalid_response",
                    "title": "Invalid response",
                    "status": 500,
                    "detail": message,
                    "code": "invalid_response",
                    "run_id": run_id,
                    "location": location,
                }
                headers = {"Location": location, "Content-Type": "application/problem+json"}
                call.executor.send_response(run_id, {"status": 500, "body": body, "headers": headers})
                raise StepFailed(message, reason="invalid_response")
        response = {"status": fields["status"], "body": call.render(fields["body"]), "headers": headers}
        call.state.response = response
        call.executor.send_response(run_id, response)
        return response


HANDLER = RespondHandler()
STEP = StepType("respond", RespondStep, HANDLER, order=120)
