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


class ServerBucketGauge:
    """A leaky bucket the server keeps and reports after each call (Shopify's REST Admin API:
    `X-Shopify-Shop-Api-Call-Limit: 32/40`, leaking 2 calls a second).

    `observe` takes the header of each answer; `delay` says how long to wait before the next call so
    that at least `keep_free` slots stay free, counting the calls sent since the last answer
    (`reserve`). The wait is computed from the injected clock; nothing is slept here.
    """

    def __init__(self, leak_per_second: float, keep_free: int, clock: Callable[[], float]) -> None:
        if leak_per_second <= 0 or keep_free < 0:
            raise ValueError("leak_per_second must be positive and keep_free at least 0")
        self._leak = leak_per_second
        self._keep_free = keep_free
        self._clock = clock
        self._level = 0.0
        self._capacity: float | None = None
        self._stamp = clock()

    @property
    def capacity(self) -> float | None:
        return self._capacity

    def level(self) -> float:
        """Calls in the bucket now, as last reported and leaked since."""
        elapsed = max(0.0, self._clock() - self._stamp)
        return max(0.0, self._level - elapsed * self._leak)

    def observe(self, value: str | None) -> None:
        """Take `used/capacity` from an answer; anything else is ignored."""
        if not value:
            return
        used, sep, capacity = value.partition("/")
        try:
            level, size = float(used.strip()), float(capacity.strip())
        except ValueError:
            return
        if not sep or size <= 0 or level < 0:
            return
        self._level, self._capacity, self._stamp = level, size, self._clock()

    def reserve(self) -> None:
        """Count a call that is being sent (its answer will report the server's own count)."""
        self._level, self._stamp = self.level() + 1, self._clock()

    def delay(self) -> float:
        """Seconds to wait before the next call (0 when there is room or no report yet)."""
        if self._capacity is None:
            return 0.0
        room = self._capacity - self._keep_free
        over = self.level() + 1 - room
        return max(0.0, over / self._leak)
