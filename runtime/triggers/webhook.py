"""`trigger: {webhook: ...}`: HTTP requests at a path; each accepted request becomes one run.

The kind declares an HTTP intake (`http`, runtime/source_api.py): the node routes each request
at the flow's method and path to `WebhookIntake` (runtime/triggers/webhook_intake.py: body limits,
content type, strict JSON, authentication, schema, correlation), which commits the run through the
core's `HttpContext.accept` (idempotency, sync answers). It starts no source of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runtime.source_api import TriggerType
from runtime.spec.common import Duration, Model, Template
from runtime.spec.webhook_auth import WebhookAuth
from runtime.triggers.webhook_intake import WebhookIntake


class WebhookSpec(Model):
    """Receive HTTP requests at a path; each accepted request becomes one run."""

    path: str = Field(description="URL path of the webhook.", examples=["/hooks/webshop/orders"])
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method accepted.")
    auth: WebhookAuth | None = Field(None, description="How callers authenticate.")
    schema_: str | None = Field(
        None,
        alias="schema",
        description="JSON Schema file (under schemas/) the body must satisfy; otherwise 422.",
        examples=["schemas/webshop_order.json"],
    )
    idempotency_key: Template | None = Field(
        None,
        description="Expression giving the delivery's identity; a repeat gets the first run's answer.",
        examples=["{{ input.id }}"],
    )
    ordering_key: Template | None = Field(
        None,
        description="Runs with the same key execute one at a time, in acceptance order.",
        examples=["{{ input.customer.id }}"],
    )
    mode: Literal["async", "sync"] = Field(
        "async", description="`async`: 202 once committed; `sync`: wait for the flow's `respond` step."
    )
    sync_timeout: Duration = Field("10s", description="In sync mode, how long to wait before answering 202.")
    max_body: str = Field("1MB", description="Largest body accepted (413 above it).", examples=["256KB"])


class WebhookTrigger(Model):
    webhook: WebhookSpec


def _explain(spec: WebhookSpec) -> dict[str, Any]:
    auth = spec.auth
    return {
        "path": spec.path,
        "method": spec.method,
        "mode": spec.mode,
        "auth": (
            f"{auth.type} (header {auth.header})"
            if auth is not None and auth.type != "none"
            else "none: anyone who knows the URL can start a run"
        ),
        "schema": spec.schema_ or "none: any JSON body is accepted",
        "idempotency_key": spec.idempotency_key or "none: every delivery starts a new run (repeats are not recognised)",
        "ordering_key": spec.ordering_key or "none: runs may execute in any order",
        "max_body": spec.max_body,
    }


TRIGGER = TriggerType(
    key="webhook",
    model=WebhookSpec,
    wrapper=WebhookTrigger,
    description="HTTP requests at a path of the service.",
    http=WebhookIntake,
    schema_field="schema_",  # `schema` in YAML: validate checks the file, the typed checks read `input.`
    idempotency_field="idempotency_key",
    ordering_field="ordering_key",
    explain=_explain,
    intake="the service's HTTP intake",
    order=10,
)
