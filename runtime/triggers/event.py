"""`trigger: {event: ...}`: run when another flow emits an event with this name.

Events are read from the store's event log by the service's dispatcher (runtime/service/events.py),
which also wakes `wait` steps, so this kind starts no source of its own.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.source_api import TriggerType
from runtime.spec.common import Expression, Model


class EventSpec(Model):
    """Run when another flow emits an event with this name."""

    name: str = Field(description="Event name as emitted.", examples=["order.submitted"])
    match: Expression | None = Field(None, description="Only events for which this is true.")


class EventTrigger(Model):
    event: EventSpec


def _explain(spec: EventSpec) -> dict[str, Any]:
    return {"event": spec.name, "match": spec.match}


TRIGGER = TriggerType(
    key="event",
    model=EventSpec,
    wrapper=EventTrigger,
    description="An event emitted by another flow.",
    explain=_explain,
    intake="the service's event log dispatcher",
    order=50,
)
