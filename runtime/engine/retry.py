"""Retry decisions: which failures a step's `retry.on` covers, and how long to wait (exponential
backoff with full jitter, capped; a server's Retry-After is honoured up to the cap)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.engine.errors import StepFailed
from runtime.spec.common import parse_duration
from runtime.spec.flow import Retry


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 1
    exponential: bool = True
    initial: float = 1.0
    maximum: float = 300.0
    jitter: bool = True
    on: tuple[str | int, ...] = ("timeout", "connect", "429", "5xx")

    @classmethod
    def from_spec(cls, spec: Retry | None) -> RetryPolicy:
        if spec is None:
            return cls()
        return cls(
            attempts=spec.attempts,
            exponential=spec.backoff == "exponential",
            initial=parse_duration(spec.initial),
            maximum=parse_duration(spec.max),
            jitter=spec.jitter,
            on=tuple(spec.on),
        )

    def covers(self, failure: StepFailed) -> bool:
        return covers(self.on, failure)

    def delay(self, attempt: int, failure: StepFailed, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = self.initial * (2 ** (attempt - 1) if self.exponential else 1)
        ceiling = min(base, self.maximum)
        wait = (rng or random).uniform(0, ceiling) if self.jitter else ceiling
        if failure.retry_after is not None:
            wait = max(wait, min(failure.retry_after, self.maximum))
        return wait


def covers(on: Sequence[str | int], failure: StepFailed) -> bool:
    status = failure.status
    for entry in on:
        text = str(entry)
        if text == "any" and failure.retriable:
            return True
        if text == "timeout" and failure.reason == "timeout":
            return True
        if text == "connect" and failure.reason in ("connect", "circuit_open"):
            return True
        if status is not None:
            if text.isdigit() and int(text) == status:
                return True
            if text == "5xx" and 500 <= status <= 599:
                return True
            if text == "4xx" and 400 <= status <= 499:
                return True
    return False
