"""The keys every step may take (`StepBase`), with retry and error handling: the base of every step
model, built-in or from a plugin (`runtime.step_api`).

`compensate` holds a step of any kind: the `Step` union is built in `runtime.spec.flow` from the
registered step kinds, and `StepBase` is completed there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from runtime.spec.common import Bool, Duration, Expression, Identifier, Int, Model, PositiveInt, Template

if TYPE_CHECKING:
    from runtime.spec.flow import Step

RetryOn = Literal["timeout", "connect", "429", "5xx", "4xx", "any"] | Int


DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("timeout", "connect", "429", "5xx")


class Retry(Model):
    """Retry a failing step with exponential backoff and full jitter."""

    attempts: PositiveInt = Field(3, description="Total attempts including the first.", examples=[6])
    backoff: Literal["exponential", "fixed"] = Field("exponential", description="How waits grow.")
    initial: Duration = Field("1s", description="First wait.")
    max: Duration = Field("5m", description="Longest wait between attempts.")
    jitter: Bool = Field(True, description="Full jitter: wait a random time up to the computed wait.")
    on: list[RetryOn] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_ON),
        description="Failure classes retried: timeout, connect, 429, 5xx, 4xx, any, or status codes.",
        examples=[["timeout", "connect", 429, "5xx"]],
    )


OnErrorAction = Literal["fail", "continue", "dead_letter"]


class GotoAction(Model):
    goto: str = Field(description="Id of the step to continue with.")


OnError = OnErrorAction | GotoAction


class StepBase(Model):
    """Keys every step may take."""

    id: Identifier | None = Field(
        None, description="Step id, unique in the flow; `steps.<id>.output` refers to its output."
    )
    name: str | None = Field(None, description="Human-readable label.")
    if_: Expression | None = Field(None, alias="if", description="Run the step only when this is true.")
    retry: Retry | None = Field(None, description="Retry policy for this step.")
    timeout: Duration | None = Field(None, description="Deadline for one attempt.", examples=["15s"])
    on_error: OnError | None = Field(None, description="What happens when the step fails after its retries.")
    idempotency_key: Template | None = Field(
        None, description="Key sent with the call (default: a stable hash of flow, run and step)."
    )
    compensate: Step | None = Field(None, description="Step run (in reverse order) when the run later fails.")
