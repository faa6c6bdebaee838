"""`kind: Project` (syncline.yaml): the project's name, store, defaults and folder layout."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from runtime.spec.common import Document, Duration, Model
from runtime.spec.flow import Retry


class Paths(Model):
    """Where the other documents live, relative to syncline.yaml."""

    systems: str = Field("systems", description="Connections.")
    governance: str = Field("governance", description="Ownership, policies and state machines.")
    flows: str = Field("flows", description="Flows.")
    mappings: str = Field("mappings", description="Mappings and Jinja2 templates.")
    schemas: str = Field("schemas", description="JSON Schemas.")
    tests: str = Field("tests/flows", description="FlowTests.")


class Defaults(Model):
    """Defaults applied to every flow unless the flow or step says otherwise."""

    retry: Retry | None = Field(None, description="Retry policy for `call` steps.")
    timeout: Duration = Field("30s", description="Timeout of one step attempt.")
    on_failure: Literal["dead_letter", "fail"] = Field("dead_letter", description="Where failed runs go.")
    hop_limit: int = Field(5, ge=1, le=100, description="Largest flow chain a message may travel.")
    max_steps: int = Field(
        10_000,
        ge=1,
        description="Step budget of a run: most step executions (each `foreach` item's steps and each "
        "`goto` repeat count) before the run fails with `step_budget` and is dead-lettered; "
        "a flow's `max_steps` overrides it.",
    )


class ServiceSettings(Model):
    """Settings of `syncline serve` that belong to the project (the same on every node)."""

    body_timeout: Duration = Field(
        "30s",
        description="Longest a webhook request body may take to arrive; a slower one (a trickling "
        "client) is cut with 408 and the connection closed.",
    )
    poison_after: int = Field(
        3,
        ge=1,
        description="A run whose execution crashed its worker or lost its lease this many times in a row "
        "without journaling a step is dead-lettered with reason `poison` instead of being claimed again "
        "(`syncline serve --poison-after` overrides it).",
    )
    max_backlog: int = Field(
        10_000,
        ge=1,
        description="Runs due and not started on the node's store above which broker and file sources stop "
        "taking events (backpressure) until the workers catch up; webhooks are not refused.",
    )
    outbox_retention: Duration = Field(
        "7d",
        description="How long a sent outbox message (`effect: publish`) is kept before the dispatcher deletes "
        "it (in batches of 1,000, checked every minute); messages not sent or given up are never deleted.",
        examples=["7d", "12h"],
    )


class Project(Document):
    """The project file: name, store and defaults."""

    kind: Literal["Project"] = Field("Project", description="Document kind.")
    store: str | None = Field(
        None,
        description="Store URL; default `sqlite:///.syncline/syncline.db` in the project folder.",
        examples=["sqlite:///.syncline/syncline.db", "postgresql://syncline@db/syncline"],
    )
    paths: Paths = Field(default_factory=Paths, description="Folder layout.")
    defaults: Defaults = Field(default_factory=Defaults, description="Defaults for flows.")
    service: ServiceSettings = Field(default_factory=ServiceSettings, description="Settings of the service.")
