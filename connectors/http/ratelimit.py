"""An asyncio token bucket: `per_second` sustained, `burst` at once, shared by all calls of a connection.

Waiters are served in arrival order (one lock). Time comes from an injected clock so tests can
drive it; waiting uses `asyncio.sleep` for the time the clock says is still needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

_ONE = 1.0 - 1e-9  # a whole token, forgiving float error in clock arithmetic


class TokenBucket:
    def __init__(
        self,
        per_second: float,
        burst: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self._rate = per_second
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)

    @property
    def available(self) -> float:
        """Tokens available now (fractional)."""
        self._refill()
        return self._tokens

    def try_acquire(self) -> bool:
        """Take a token if one is available right now."""
        if self._lock.locked():
            return False  # someone is already waiting: keep the order
        self._refill()
        if self._tokens >= _ONE:
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False

    async def acquire(self) -> None:
        """Take a token, waiting in line until one is available."""
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= _ONE:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1.0 - self._tokens) / self._rate)
