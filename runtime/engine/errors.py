"""How a step or run ends other than by succeeding.

    StepFailed           a step failed; `error_class` says whether a retry can help
    BusinessException    a `fail` step or an invalid transition: the run ends as `exception`
    RunFiltered          a `filter` step was false: the run ends as `filtered`
    RunSuspended         the run waits (retry due later, wait step, hold); it resumes from the journal
    StepBudgetExceeded   the run used up its step budget (`max_steps`): it ends dead-lettered, whatever
                         the failing step's `on_error` says

Third-party exceptions are translated into these at the step boundary (`classify`).
"""

from __future__ import annotations

from typing import Any

from runtime.connector_api import ConnectorError
from runtime.errors import ExpressionError, SynclineError


class StepFailed(SynclineError):
    def __init__(
        self,
        message: str,
        *,
        error_class: str = "fatal",
        reason: str = "error",
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.body = body
        self.code = code  # the called system's own error code, when its answer named one

    @property
    def retriable(self) -> bool:
        return self.error_class == "retriable"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "class": self.error_class, "reason": self.reason}
        if self.status is not None:
            out["status"] = self.status
        if self.code is not None:
            out["code"] = self.code
        if self.body is not None:
            out["body"] = self.body
        return out


class BusinessException(SynclineError):
    def __init__(self, code: str, message: str, route_to: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.route_to = route_to

    def as_dict(self) -> dict[str, Any]:
        return {"class": "business", "code": self.code, "message": self.message, "route_to": self.route_to}


class RunFiltered(SynclineError):
    """A filter step stopped the run."""


class RunSuspended(SynclineError):
    """The run cannot go on now; it is stored with `status` and resumes at `due_at` (or on an event)."""

    def __init__(self, status: str, *, due_at: float | None, reason: str, meta: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.due_at = due_at
        self.reason = reason
        self.meta = meta or {}


class StepBudgetExceeded(SynclineError):
    """A run executed more steps than its flow's `max_steps` (a `goto` loop, an endless retry of a
    branch, a huge `foreach`): it stops before the next step and is dead-lettered."""

    code = "step_budget_exceeded"

    def __init__(self, flow: str, budget: int, step: str) -> None:
        self.flow = flow
        self.budget = budget
        self.step = step
        self.message = (
            f"step budget exceeded: flow {flow!r} ran {budget} steps (max_steps {budget}) and stopped before "
            f"step {step!r}; a `goto` loop that never ends? fix the loop or raise the flow's `max_steps`"
        )
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": "fatal",
            "reason": "step_budget",
            "code": self.code,
            "message": self.message,
            "flow": self.flow,
            "max_steps": self.budget,
            "step": self.step,
        }


def classify(exc: BaseException) -> StepFailed | BusinessException | RunFiltered | RunSuspended:
    """Translate any exception raised inside a step into the engine's own kinds."""
    if isinstance(exc, StepFailed | BusinessException | RunFiltered | RunSuspended):
        return exc
    if isinstance(exc, ConnectorError):
        return StepFailed(
            str(exc),
            error_class=exc.error_class,
            reason=exc.reason,
            status=exc.status,
            retry_after=exc.retry_after,
            body=exc.body,
            code=exc.code,
        )
    if isinstance(exc, TimeoutError):
        return StepFailed("the step timed out", error_class="retriable", reason="timeout")
    if isinstance(exc, ExpressionError):
        from runtime.expr.errors import LimitError, RenderError
        from runtime.mappings import MappingError

        if isinstance(exc, MappingError):
            return StepFailed(str(exc), reason="mapping")
        # `expression_limit`: a bound was exceeded (a number too large, the render's time budget, ...)
        return StepFailed(str(exc), reason=exc.reason if isinstance(exc, RenderError | LimitError) else "expression")
    if isinstance(exc, SynclineError):
        return StepFailed(str(exc), reason="error")
    return StepFailed(f"internal error: {type(exc).__name__}: {exc}", reason="internal")
