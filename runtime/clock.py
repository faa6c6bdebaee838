"""Clocks: the system clock, and a test clock whose `sleep` advances time instantly.

Everything that waits or reads the time (retries, timeouts, schedules, leases) takes a `Clock`, so
FlowTests and unit tests control time without really waiting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Unix seconds."""

    def now(self) -> dt.datetime:
        """Aware UTC datetime (what `now()` in expressions returns)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


class FakeClock:
    """A clock for tests: starts at `start` and moves only when slept on or advanced."""

    def __init__(self, start: float | str | None = None) -> None:
        if isinstance(start, str):
            parsed = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            start = parsed.timestamp()
        self._now = float(start if start is not None else 1_800_000_000.0)
        self.slept: list[float] = []

    def time(self) -> float:
        return self._now

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._now, dt.UTC)

    def advance(self, seconds: float) -> None:
        self._now += max(seconds, 0.0)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
