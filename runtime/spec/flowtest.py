"""`kind: FlowTest`: run a flow on a given input with mocked systems and check the outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runtime.spec.common import AnyValue, Bool, Document, Duration, Int, Model


class InputFile(Model):
    file: str = Field(description="JSON or YAML file with the input, relative to the project.")


class SignedWebhook(Model):
    """A webhook request to send through the trigger, signed with the flow's webhook secret."""

    body: AnyValue = Field(description="Request body (JSON).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers.")
    sign: bool = Field(True, description="Sign it as the flow's webhook auth requires.")


class WebhookInput(Model):
    webhook: SignedWebhook


class MockError(Model):
    status: Int | None = Field(None, description="HTTP-like status of the failure.")
    reason: Literal["timeout", "connect", "status"] = Field("status", description="Failure class.")
    message: str = Field("mocked failure", description="Error text.")
    body: Any = Field(None, description="Error body.")
    code: str | None = Field(
        None, description="The system's own error code (as `errors:` reads it), carried into the dead letter."
    )


class MockResponse(Model):
    output: AnyValue = Field(None, description="What the operation returns.")
    error: MockError | None = Field(None, description="Fail instead of returning.")
    latency: Duration | None = Field(None, description="Simulated latency (on the test clock).")


class Mock(MockResponse):
    """The behaviour of one operation: one response for every call, or a sequence."""

    sequence: list[MockResponse] | None = Field(None, description="Responses for the 1st, 2nd, ... call.")


class ExpectedCall(Model):
    operation: str = Field(description="`connection.operation`.")
    params: dict[str, Any] | None = Field(None, description="Parameters that must match (subset).")
    times: Int | None = Field(None, description="Exact number of such calls.")


class Expect(Model):
    status: Literal["succeeded", "failed", "dead_lettered", "filtered", "held", "exception", "waiting"] | None = Field(
        None, description="Final run status."
    )
    output: AnyValue = Field(None, description="Expected output of the run (subset match).")
    steps: dict[str, Any] = Field(default_factory=dict, description="Expected step outputs by id (subset).")
    calls: list[ExpectedCall] = Field(default_factory=list, description="Calls that must have been made.")
    not_called: list[str] = Field(default_factory=list, description="Operations that must not be called.")
    dead_letter: dict[str, Any] | None = Field(None, description="Expected dead-letter fields, e.g. reason.")
    exception: dict[str, Any] | None = Field(None, description="Expected business exception, e.g. code.")
    emitted: list[dict[str, Any]] = Field(default_factory=list, description="Events that must be emitted.")
    response: dict[str, Any] | None = Field(None, description="Expected sync response (status, body).")
    exact: Bool = Field(
        False,
        description="Numbers in these expectations must also have the same scale as the values the run "
        "produced or sent (19.00 then differs from 19 and from 19.0); by default they compare by value.",
    )


class FlowTest(Document):
    """A flow unit test."""

    kind: Literal["FlowTest"] = Field("FlowTest", description="Document kind.")
    flow: str = Field(description="Name of the flow under test.")
    input: InputFile | WebhookInput | AnyValue = Field(
        None, union_mode="left_to_right", description="Inline input, `{file: PATH}`, or `{webhook: {...}}`."
    )
    repeat: Int = Field(1, ge=1, le=100, description="Deliver the same event this many times.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables.")
    secrets: dict[str, str] = Field(default_factory=dict, description="Secret values for the test.")
    clock: str | None = Field(None, description="Start time of the test clock (ISO 8601).")
    mocks: dict[str, Mock] = Field(default_factory=dict, description="Operation → mocked behaviour.")
    expect: Expect = Field(default_factory=Expect, description="Expected outcome.")
