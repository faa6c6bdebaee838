"""`kind: Ownership`, `kind: Policy` and `kind: StateMachine`: the organisation's rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from runtime.spec.common import Bool, Document, Duration, Expression, Model


class EntityOwnership(Model):
    """Who is the system of record for an entity and, optionally, for each field."""

    owner: str = Field(description="System of record for the entity.", examples=["erp"])
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Field-level owners that override the entity owner.",
        examples=[{"email": "crm", "credit_status": "erp"}],
    )
    requesters: list[str] = Field(
        default_factory=list, description="Systems that may ask the owner to create or change the entity."
    )


class Ownership(Document):
    """Systems of record per entity and field."""

    kind: Literal["Ownership"] = Field("Ownership", description="Document kind.")
    entities: dict[str, EntityOwnership] = Field(description="Entity name → ownership.")


Effect = Literal["read", "create", "update", "upsert", "delete", "command", "publish"]


class PolicyMatch(Model):
    """Which flows, steps or operations a rule applies to (all given keys must match)."""

    system: str | list[str] | None = Field(None, description="Target system(s).")
    connector: str | list[str] | None = Field(None, description="Connector type(s), e.g. http.")
    operation: str | list[str] | None = Field(None, description="`connection.operation`(s).")
    entity: str | list[str] | None = Field(None, description="Entity(ies).")
    effect: Effect | list[Effect] | None = Field(None, description="Effect(s).")
    flow: str | list[str] | None = Field(None, description="Flow name(s).")
    trigger: str | None = Field(
        None, description="Trigger kind (an installed one: webhook, schedule, poll, queue, event, file, manual, ...)."
    )
    label: dict[str, str] | None = Field(None, description="Flow labels.")

    @field_validator("trigger")
    @classmethod
    def _installed_kind(cls, value: str | None) -> str | None:
        from runtime.trigger_registry import default_trigger_registry

        kinds = default_trigger_registry().names()
        if value is not None and value not in kinds:
            raise ValueError(f"unknown trigger kind {value!r}; the installed kinds are: {', '.join(kinds)}")
        return value


class PolicyRequire(Model):
    """Static requirements checked by `syncline validate`."""

    idempotency_key: Bool | None = Field(None, description="Matching calls declare an idempotency key.")
    retry: Bool | None = Field(None, description="Matching calls have a retry policy.")
    auth: Bool | None = Field(None, description="Matching webhooks authenticate callers.")
    schema_: Bool | None = Field(None, alias="schema", description="Matching webhooks declare a schema.")
    owner: Bool | None = Field(None, description="Matching flows name an owning team.")
    timeout: Bool | None = Field(None, description="Matching steps declare a timeout.")


class PolicyForbid(Model):
    """Things matching flows must not use."""

    connectors: list[str] = Field(default_factory=list, description="Connector types.")
    hosts: list[str] = Field(default_factory=list, description="Host patterns.")


class Window(Model):
    """A recurring maintenance window."""

    cron: str = Field(description="When the window starts.", examples=["0 2 * * SUN"])
    duration: Duration = Field(description="How long it lasts.", examples=["2h"])
    timezone: str = Field("UTC", description="IANA timezone of the cron.")


class RateLimit(Model):
    per_second: float = Field(gt=0, description="Sustained calls per second.")
    burst: int = Field(1, ge=1, description="Calls allowed at once.")


class Breaker(Model):
    failures: int = Field(5, ge=1, description="Consecutive failures that open the breaker.")
    reset_after: Duration = Field("30s", description="How long it stays open before a probe.")


class PolicyRule(Model):
    """One rule: a match plus what it requires, forbids or does at run time."""

    id: str = Field(description="Rule id, shown in diagnostics and `explain`.", examples=["erp-writes-idempotent"])
    description: str | None = Field(None, description="Why the rule exists.")
    match: PolicyMatch = Field(default_factory=PolicyMatch, description="What the rule applies to.")
    require: PolicyRequire | None = Field(None, description="Static requirements.")
    forbid: PolicyForbid | None = Field(None, description="Static prohibitions.")
    when: Expression | None = Field(None, description="Run-time condition for `action`.")
    action: Literal["hold", "buffer", "deny"] | None = Field(None, description="Run-time action.")
    approvers: str | None = Field(None, description="Team allowed to approve holds.")
    mask: list[str] = Field(default_factory=list, description="JSONPaths masked in logs, API and dead letters.")
    window: Window | None = Field(None, description="Maintenance window (with `action: buffer`).")
    rate_limit: RateLimit | None = Field(None, description="Calls per second shared by all flows.")
    concurrency: int | None = Field(None, ge=1, description="Calls in flight at once, shared by all flows.")
    circuit_breaker: Breaker | None = Field(None, description="Breaker shared by all flows.")
    allow_hosts: list[str] | None = Field(None, description="Egress allow-list (host patterns).")
    severity: Literal["error", "warning"] = Field("error", description="How validate reports a violation.")

    @model_validator(mode="after")
    def _action_needs(self) -> PolicyRule:
        if self.action == "hold" and not self.when:
            raise ValueError("`action: hold` needs a `when` condition")
        if self.action == "buffer" and self.window is None:
            raise ValueError("`action: buffer` needs a `window`")
        return self


class Policy(Document):
    """Integration rules checked by validate and enforced at run time."""

    kind: Literal["Policy"] = Field("Policy", description="Document kind.")
    rules: list[PolicyRule] = Field(min_length=1, description="The rules.")


class StateMachine(Document):
    """Allowed states and transitions of a business entity."""

    kind: Literal["StateMachine"] = Field("StateMachine", description="Document kind.")
    entity: str = Field(description="Entity whose state this is.", examples=["order"])
    initial: str = Field(description="State of a new entity.", examples=["received"])
    transitions: dict[str, list[str]] = Field(
        description="State → states it may move to.", examples=[{"received": ["validated", "rejected"]}]
    )
    park_timeout: Duration = Field(
        "1h", description="How long an early event waits for its predecessor before it is dead-lettered."
    )

    def states(self) -> set[str]:
        found = {self.initial, *self.transitions}
        for targets in self.transitions.values():
            found.update(targets)
        return found
