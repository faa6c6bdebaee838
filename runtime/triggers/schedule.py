"""`trigger: {schedule: ...}`: fire on a cron expression or at a fixed interval.

Fires are computed and recorded by the service's scheduler (runtime/triggers/cron.py), once per fire
time even with several nodes, so this kind starts no source of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from runtime.source_api import TriggerType
from runtime.spec.common import AnyValue, Duration, Model


class ScheduleSpec(Model):
    """Fire on a cron expression or at a fixed interval."""

    cron: str | None = Field(None, description="Five-field cron expression.", examples=["0 * * * *"])
    every: Duration | None = Field(None, description="Fixed interval instead of cron.", examples=["15m"])
    timezone: str = Field("UTC", description="IANA timezone the cron is read in.", examples=["Europe/Berlin"])
    overlap: Literal["skip", "queue", "allow"] = Field(
        "skip", description="What to do when the previous fire is still running."
    )
    misfire_grace: Duration = Field("5m", description="How late a missed fire may still run.")
    input: AnyValue = Field(None, description="Payload given to each run.")

    @model_validator(mode="after")
    def _one_of(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` or `every`")
        return self


class ScheduleTrigger(Model):
    schedule: ScheduleSpec


def _explain(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "when": f"cron {spec.cron}" if spec.cron else f"every {spec.every}",
        "timezone": spec.timezone,
        "overlap": spec.overlap,
    }


TRIGGER = TriggerType(
    key="schedule",
    model=ScheduleSpec,
    wrapper=ScheduleTrigger,
    description="A cron expression or a fixed interval.",
    explain=_explain,
    intake="the service's scheduler",
    order=20,
)
