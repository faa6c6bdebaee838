"""`call`: call an operation of a connection through its connector.

Parameters (`with:`) are rendered, then the operation's own templated fields are rendered with
`params`; the idempotency key defaults to a stable hash of (flow, run, step) so a repeated attempt
or a resumed run sends the same key. In a dry run, operations that write are listed, not called.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.connector_api import CallRequest
from runtime.spec.flow import CallStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


def default_idempotency_key(flow: str, run_id: str, step_key: str) -> str:
    return hashlib.sha256(f"{flow}\x1f{run_id}\x1f{step_key}".encode()).hexdigest()[:32]


class CallHandler(StepHandler):
    """The `call` step kind."""

    calls_operation = True

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, CallStep)
        return [Reference("operation", step.call, ("call",), params=step.with_)]

    def rendered_first(self, step: StepBase) -> Any:
        assert isinstance(step, CallStep)
        return step.with_

    def graph_label(self, step: StepBase) -> str:
        assert isinstance(step, CallStep)
        return step.call

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, CallStep)
        return {
            "operation": compiler.operation(step.call),
            "params": compiler.value(dict(step.with_), f"{compiled.id}.with"),
        }

    async def execute(self, call: StepCall) -> Any:
        operation = call.step.fields["operation"]
        params = call.render(call.step.fields["params"])
        call.input = params
        if call.step.idempotency_key is not None:
            key = str(call.render(call.step.idempotency_key))
        else:
            key = default_idempotency_key(call.state.flow.name, call.state.root_run_id, call.key)
        return await call.executor.invoke(call, operation, params, key, queue=True)


async def invoke_operation(call: StepCall, operation: Any, params: Any, key: str | None, *, queue: bool = False) -> Any:
    """Render the operation for `params` and call it (shared by call, reconcile and poll). With
    `queue` (a `call` step), an `effect: publish` operation on an executor with an outbox is not
    called: its message is kept with the step and sent after the step is committed
    (`runtime.engine.outbox`)."""
    # imported here: loading the step kinds (when the flow model is built) loads no engine or policy code
    from runtime.engine.context import CallLog
    from runtime.policy.guard import SUPPRESSED, before_call

    executor = call.executor
    spec = operation.fields.render({**call.service_scope(), "params": params})
    log = CallLog(
        step=call.key,
        operation=operation.target,
        params=params,
        idempotency_key=key,
        effect=operation.effect,
        attempt=call.attempt,
    )
    call.state.calls.append(log)
    if before_call(call, operation, params) == SUPPRESSED:
        log.status = "suppressed"
        return {"suppressed": "echo", "system": operation.system}
    if executor.dry_run and operation.effect != "read":
        log.status = "planned"
        return {"dry_run": True, "operation": operation.target}
    request = CallRequest(
        operation=operation.name,
        spec=spec if isinstance(spec, dict) else {},
        params=params,
        idempotency_key=key,
        headers=call.outgoing_headers(),
        timeout=call.step.timeout,
        dry_run=False,
    )
    if queue and key is not None and executor.outbox and operation.effect == "publish":
        from runtime.engine.outbox import stage

        log.status = "queued"
        log.output = stage(call, operation, request)
        return log.output
    await executor.before_effect(call.state.run.id)  # earlier effects are journaled before this one
    try:
        result = await executor.connectors.invoke(operation, request, executor.limits, call.state)
    except Exception as exc:
        log.status = "error"
        log.error = call.executor.secrets.redact(str(exc))
        raise
    log.status = "ok"
    log.output = result.output
    return result.output


HANDLER = CallHandler()
STEP = StepType("call", CallStep, HANDLER, order=40)
