"""`Link`: one lazily opened broker connection that is re-created after a failure, with backoff.

`get()` returns the live connection, opening it on first use and again on the next call after it
broke (`broken()`, or `alive()` says it is gone). A failed attempt waits `min_delay`, doubling up to
`max_delay`, before the next one; a call inside that wait fails at once with the last attempt's
error (retriable `connect` errors carry `retry_after`), so a broker that is down is not hammered by
every run. One attempt at a time: concurrent callers share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from runtime.connector_api import ConnectorError

T = TypeVar("T")


class Backoff:
    """Delays after consecutive failures: min_delay, 2x, 4x ... capped at max_delay."""

    def __init__(self, min_delay: float, max_delay: float) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.max_delay, self.min_delay * 2 ** min(failures - 1, 32)))


class Link(Generic[T]):
    """A broker connection opened on demand and re-opened after it broke."""

    def __init__(
        self,
        open_: Callable[[], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
        alive: Callable[[T], bool],
        backoff: Backoff,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._open = open_
        self._close = close
        self._alive = alive
        self._backoff = backoff
        self._clock = clock or time.monotonic
        self._current: T | None = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._next_attempt = 0.0
        self._last_error: ConnectorError | None = None
        self.opened = 0  # connections opened so far (tests and metrics)

    @property
    def current(self) -> T | None:
        return self._current

    async def get(self) -> T:
        current = self._current
        if current is not None and self._alive(current):
            return current
        async with self._lock:
            current = self._current
            if current is not None:
                if self._alive(current):
                    return current
                await self._discard()
            wait = self._next_attempt - self._clock()
            if wait > 0 and self._last_error is not None:
                last = self._last_error
                raise ConnectorError(
                    f"{last} (next connection attempt in {wait:.2f}s)",
                    reason=last.reason,
                    error_class=last.error_class,
                    retry_after=wait if last.retriable else None,
                )
            try:
                opened = await self._open()
            except ConnectorError as exc:
                self._failures += 1
                self._next_attempt = self._clock() + self._backoff.delay(self._failures)
                self._last_error = exc
                raise
            self._failures = 0
            self._next_attempt = 0.0
            self._last_error = None
            self._current = opened
            self.opened += 1
            return opened

    async def broken(self, value: T) -> None:
        """`value` failed in a way that needs a new connection: close it; the next `get()` re-opens."""
        async with self._lock:
            if self._current is value:
                await self._discard()

    async def _discard(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._close(current)

    async def aclose(self) -> None:
        async with self._lock:
            await self._discard()
