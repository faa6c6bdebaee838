"""A circuit breaker: closed → open after N consecutive failures → half-open (one probe) → closed.

`admit()` lets a call through or raises `BreakerOpen`; the caller reports the call's outcome with the
returned `Ticket`. Only the probe's outcome moves a half-open breaker, so a late result from a call
admitted before the breaker opened cannot close it. Time comes from an injected clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


class BreakerOpen(Exception):
    """The breaker refuses calls; `retry_after`: seconds until a probe may pass (None: a probe is running)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("circuit open")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Ticket:
    generation: int
    probe: bool


class CircuitBreaker:
    def __init__(self, failures: int, reset_after: float, clock: Callable[[], float]) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self._threshold = failures
        self._reset_after = reset_after
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_running = False
        self._generation = 0

    @property
    def state(self) -> State:
        return self._state

    def admit(self) -> Ticket:
        if self._state == "open":
            wait = self._opened_at + self._reset_after - self._clock()
            if wait > 0:
                raise BreakerOpen(wait)
            self._state = "half_open"
            self._probe_running = False
        if self._state == "half_open":
            if self._probe_running:
                raise BreakerOpen(None)
            self._probe_running = True
            return Ticket(self._generation, probe=True)
        return Ticket(self._generation, probe=False)

    def success(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if self._state == "half_open" and ticket.probe:
            self._close()
        elif self._state == "closed":
            self._failures = 0

    def failure(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if self._state == "half_open" and ticket.probe:
            self._open()
        elif self._state == "closed":
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()

    def release(self, ticket: Ticket) -> None:
        """The call ended without telling anything about the system's health (cancelled, refused locally)."""
        if ticket.generation == self._generation and self._state == "half_open" and ticket.probe:
            self._probe_running = False

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probe_running = False
        self._generation += 1

    def _close(self) -> None:
        self._state = "closed"
        self._failures = 0
        self._probe_running = False
        self._generation += 1
