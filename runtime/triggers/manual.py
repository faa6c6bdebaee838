"""`trigger: {manual: ...}`: run only when started through the API or `syncline run`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.source_api import TriggerType
from runtime.spec.common import Model


class ManualSpec(Model):
    """Run only when started through the API or `syncline run`."""

    input_schema: str | None = Field(None, description="JSON Schema for the input.")


class ManualTrigger(Model):
    manual: ManualSpec


def _explain(spec: ManualSpec) -> dict[str, Any]:
    return {"schema": spec.input_schema or "none"}


TRIGGER = TriggerType(
    key="manual",
    model=ManualSpec,
    wrapper=ManualTrigger,
    description="Started through the API or `syncline run`.",
    explain=_explain,
    intake="the admin API and `syncline run`",
    order=70,
)
