"""`kind: Flow`: a trigger and the steps that run for each event it delivers.

A trigger is a mapping with exactly one key naming an installed trigger kind (runtime/triggers/:
`webhook`, `schedule`, `poll`, `queue`, `event`, `file`, `manual`; plugins add more). A step is a
mapping with exactly one step key (`call`, `map`, `switch`, ...) plus the keys every step may take
(`id`, `if`, `retry`, `timeout`, `on_error`, `idempotency_key`, `compensate`). Both are discriminated
by that key, so an error points into the right step kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import Discriminator, Field, Tag

from runtime.spec.common import (
    AnyValue,
    Document,
    Duration,
    Expression,
    Identifier,
    Int,
    JsonPath,
    Model,
    Name,
    PositiveInt,
    Template,
)
from runtime.spec.step_base import DEFAULT_RETRY_ON as DEFAULT_RETRY_ON
from runtime.spec.step_base import GotoAction as GotoAction
from runtime.spec.step_base import OnError as OnError
from runtime.spec.step_base import OnErrorAction as OnErrorAction
from runtime.spec.step_base import Retry as Retry
from runtime.spec.step_base import RetryOn as RetryOn
from runtime.spec.step_base import StepBase as StepBase
from runtime.triggers.event import EventSpec as EventSpec
from runtime.triggers.event import EventTrigger as EventTrigger
from runtime.triggers.file import FileSpec as FileSpec
from runtime.triggers.file import FileTrigger as FileTrigger
from runtime.triggers.manual import ManualSpec as ManualSpec
from runtime.triggers.manual import ManualTrigger as ManualTrigger
from runtime.triggers.poll import PollCursor as PollCursor
from runtime.triggers.poll import PollSpec as PollSpec
from runtime.triggers.poll import PollTrigger as PollTrigger
from runtime.triggers.queue import QueueSpec as QueueSpec
from runtime.triggers.queue import QueueTrigger as QueueTrigger
from runtime.triggers.schedule import ScheduleSpec as ScheduleSpec
from runtime.triggers.schedule import ScheduleTrigger as ScheduleTrigger
from runtime.triggers.webhook import WebhookSpec as WebhookSpec
from runtime.triggers.webhook import WebhookTrigger as WebhookTrigger

# --------------------------------------------------------------------------------------- triggers
# The built-in trigger kinds live in runtime/triggers/ (one module each) and, like third-party kinds,
# are registered through the `syncline.triggers` entry points; their models are re-exported here.

TRIGGER_KINDS: dict[str, type[Model]] = {}  # filled from the trigger registry below


def _kind_of(value: Any, kinds: dict[str, type[Model]], prefix: str) -> str | None:
    if isinstance(value, dict):
        present = [k for k in kinds if k in value]
        if len(present) == 1:
            return f"{prefix}.{present[0]}"
        return None
    for key, cls in kinds.items():
        if isinstance(value, cls):
            return f"{prefix}.{key}"
    return None


def trigger_kind(value: Any) -> str | None:
    return _kind_of(value, TRIGGER_KINDS, "trigger")


def _kind_union(what: str, kinds: dict[str, type[Model]], discriminator: Any) -> Any:
    """The tagged union of `kinds` (key -> model), told apart by which key a mapping has."""
    members = tuple(Annotated[model, Tag(f"{what}.{key}")] for key, model in kinds.items())
    return Annotated[
        Union[members],  # noqa: UP007 (a union built from a tuple of members)
        Discriminator(
            discriminator,
            custom_error_type=f"{what}_kind",
            custom_error_message=f"a {what} needs exactly one of the installed kinds: " + ", ".join(kinds),
        ),
    ]


def _trigger_union() -> Any:
    from runtime.trigger_registry import default_trigger_registry

    registry = default_trigger_registry()
    TRIGGER_KINDS.update({t.key: registry.wrapper(t.key) for t in registry})  # type: ignore[misc]
    return _kind_union("trigger", TRIGGER_KINDS, trigger_kind)


if TYPE_CHECKING:
    Trigger: TypeAlias = Model
else:
    Trigger = _trigger_union()

# ------------------------------------------------------------------------------------------ steps


class ValidateSpec(Model):
    schema_: str = Field(alias="schema", description="JSON Schema file.", examples=["schemas/webshop_order.json"])
    data: AnyValue = Field("{{ input }}", description="What to validate.")


class ValidateStep(StepBase):
    """Check data against a JSON Schema; a mismatch fails the step with the failing path."""

    validate_: str | ValidateSpec = Field(alias="validate", description="Schema file, or schema and data.")


class MapStep(StepBase):
    """Transform data with a Mapping (by name or file under mappings/)."""

    map: str = Field(description="Mapping name or file.", examples=["mappings/webshop_order_to_erp.yaml"])
    input: AnyValue = Field(None, description="What to map (default: the run's input).")


class SetStep(StepBase):
    """Set variables (`vars.<name>`)."""

    set: dict[str, AnyValue] = Field(description="Variables to set.", examples=[{"total": "{{ input.total }}"}])


class CallStep(StepBase):
    """Call an operation of a connection."""

    call: str = Field(description="`connection.operation`.", examples=["erp.create_sales_order"])
    with_: dict[str, AnyValue] = Field(default_factory=dict, alias="with", description="Operation parameters.")


class SwitchCase(Model):
    when: Expression | None = Field(None, description="Condition; a case without `when` is the default.")
    steps: list[Step] = Field(description="Steps of this branch.")


class SwitchStep(StepBase):
    """Run the steps of the first case whose `when` is true."""

    switch: list[SwitchCase] = Field(min_length=1, description="Cases, tried in order.")


class FilterStep(StepBase):
    """Stop the run (status `filtered`) unless the condition holds."""

    filter: Expression = Field(description="Keep going only when this is true.", examples=["{{ input.total > 0 }}"])


class ForeachStep(StepBase):
    """Run steps once per item of a list."""

    foreach: Template = Field(description="The list to iterate.", examples=["{{ input.lines }}"])
    as_: Identifier = Field("item", alias="as", description="Name of the current item.")
    concurrency: PositiveInt = Field(1, description="Items processed at once.")
    steps: list[Step] = Field(description="Steps run for each item.")


class EmitSpec(Model):
    event: str = Field(description="Event name.", examples=["order.submitted"])
    data: AnyValue = Field(None, description="Event payload.")
    key: Template | None = Field(None, description="Ordering/correlation key of the event.")


class EmitStep(StepBase):
    """Emit an internal event (committed with the step) that event-triggered flows receive."""

    emit: EmitSpec


class WaitSpec(Model):
    event: str = Field(description="Event to wait for.", examples=["erp.order.acknowledged"])
    match: Expression | None = Field(None, description="Which event belongs to this run.")
    timeout: Duration = Field(description="How long to wait.", examples=["2h"])
    on_timeout: Literal["fail", "continue", "dead_letter"] = Field("fail", description="When it times out.")


class WaitStep(StepBase):
    """Wait for an event (e.g. an acknowledgement) before going on."""

    wait: WaitSpec


class TransitionSpec(Model):
    machine: str = Field(description="State machine name.", examples=["order-lifecycle"])
    key: Template = Field(description="Entity key.", examples=["{{ input.id }}"])
    to: str = Field(description="Target state.", examples=["submitted"])


class TransitionStep(StepBase):
    """Move an entity to a state of its state machine."""

    transition: TransitionSpec


class FailSpec(Model):
    code: str = Field(description="Business exception code.", examples=["CUSTOMER_NOT_IN_ERP"])
    message: Template = Field(description="What went wrong, for the owning team.")
    route_to: str | None = Field(None, description="Team to route to (default: the flow's owner).")


class FailStep(StepBase):
    """End the run as a business exception with a code."""

    fail: FailSpec


class RespondSpec(Model):
    status: Int = Field(200, ge=100, le=599, description="HTTP status.")
    body: AnyValue = Field(None, description="Response body.")
    headers: dict[str, Template] = Field(default_factory=dict, description="Response headers.")


class RespondStep(StepBase):
    """Answer a sync webhook caller."""

    respond: RespondSpec


class ReconcileSide(Model):
    call: str = Field(description="`connection.operation` listing records.")
    with_: dict[str, AnyValue] = Field(default_factory=dict, alias="with")
    items: JsonPath = Field("$[*]", description="Records in the response.")


class ReconcileSpec(Model):
    left: ReconcileSide
    right: ReconcileSide
    key: Template = Field(description="Record key, evaluated per record as `item`.", examples=["{{ item.id }}"])
    fields: list[str] = Field(default_factory=list, description="Fields compared.")
    tolerance: dict[str, Any] = Field(default_factory=dict, description="Allowed numeric difference per field.")


class ReconcileStep(StepBase):
    """Compare two systems' records by key and report mismatches."""

    reconcile: ReconcileSpec


class SubflowStep(StepBase):
    """Run another flow with this input and use its output."""

    flow: str = Field(description="Name of the flow.", examples=["enrich-customer"])
    with_: AnyValue = Field(None, alias="with", description="Input of the sub-flow.")


# ------------------------------------------------------------------------------------------- flow


class Source(Model):
    system: str = Field(description="System the flow's data comes from.", examples=["webshop"])
    entity: str = Field(description="Entity the data describes.", examples=["order"])


class ExceptionNotice(Model):
    """Notify someone of a business exception through a connection."""

    call: str = Field(description="`connection.operation` to call.", examples=["teams.post_message"])
    with_: dict[str, AnyValue] = Field(default_factory=dict, alias="with", description="Operation parameters.")


class Flow(Document):
    """A trigger and the steps run for each event it delivers."""

    kind: Literal["Flow"] = Field("Flow", description="Document kind.")
    owner: str | None = Field(None, description="Team that receives this flow's business exceptions.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels.")
    source: Source | None = Field(None, description="System and entity the data comes from (ownership).")
    trigger: Trigger = Field(description="What starts a run.")
    vars: dict[str, AnyValue] = Field(default_factory=dict, description="Initial variables (`vars.<name>`).")
    business_keys: dict[str, Template] = Field(
        default_factory=dict,
        description="Keys a run can be found by (lineage), e.g. `order: '{{ input.id }}'`.",
        examples=[{"order": "{{ input.id }}"}],
    )
    correlation_id: Template | None = Field(None, description="Expression for the correlation id.")
    steps: list[Step] = Field(min_length=1, description="Steps run in order.")
    on_failure: Literal["dead_letter", "fail"] = Field(
        "dead_letter", description="Where a failed run goes: the dead-letter queue (default) or just failed."
    )
    on_exception: ExceptionNotice | None = Field(
        None,
        description="A call made when the run ends in a business exception (e.g. notify the owning team); "
        "`exception` (code, message, route_to) is in scope.",
    )
    timeout: Duration | None = Field(None, description="Deadline for a whole run.")
    max_steps: PositiveInt | None = Field(
        None,
        description="Step budget of a run of this flow (default: the project's `defaults.max_steps`, 10000).",
        examples=[500],
    )
    version: Name | None = Field(None, description="Optional version label shown in run history.")


# ------------------------------------------------------------------------------- the step union

# The step kinds come from the step registry (`syncline.steps` entry points: the built-ins and any
# installed plugin), in their declared order; `Step` is the union discriminated by the step's key.
STEP_KINDS: dict[str, type[StepBase]] = {}


def step_kind(value: Any) -> str | None:
    return _kind_of(value, STEP_KINDS, "step")  # type: ignore[arg-type]


def kind_of_step(step: StepBase) -> str:
    for key, cls in STEP_KINDS.items():
        if type(step) is cls:
            return key
    raise TypeError(type(step).__name__)


def _step_union() -> Any:
    from runtime.step_registry import default_step_registry

    registry = default_step_registry()
    STEP_KINDS.update({step_type.key: step_type.model for step_type in registry})
    return _kind_union("step", STEP_KINDS, step_kind)  # type: ignore[arg-type]


if TYPE_CHECKING:
    Step: TypeAlias = StepBase
else:
    Step = _step_union()

_models: tuple[type[Model], ...] = (StepBase, *STEP_KINDS.values(), SwitchCase, Flow)
for _cls in _models:
    _cls.model_rebuild(_types_namespace={"Step": Step})
