"""Per-system limits shared by every flow: rate (token bucket), concurrency and a circuit breaker,
declared by Policy rules (`rate_limit`, `concurrency`, `circuit_breaker`) matching a system."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.clock import Clock
from runtime.connector_api import ConnectorError
from runtime.spec.common import parse_duration

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledOperation, Plan


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float


@dataclass
class _Breaker:
    failures: int
    reset_after: float
    consecutive: int = 0
    opened_at: float | None = None
    probing: bool = False


@dataclass
class _SystemLimit:
    bucket: _Bucket | None = None
    semaphore: asyncio.Semaphore | None = None
    breaker: _Breaker | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SystemLimits:
    def __init__(self, plan: Plan, clock: Clock) -> None:
        self.clock = clock
        self.on_wait: Callable[[str, float], None] | None = None  # (system, seconds) after a rate-limit wait
        self._limits: dict[str, _SystemLimit] = {}
        from runtime.policy.match import pattern_matches, rules

        systems = {c.system for c in plan.connections.values()}
        for _, rule in rules(plan):
            for system in systems:
                if not pattern_matches(rule.match.system, system):
                    continue
                limit = self._limits.setdefault(system, _SystemLimit())
                if rule.rate_limit is not None:
                    now = clock.time()
                    limit.bucket = _Bucket(
                        rule.rate_limit.per_second, float(rule.rate_limit.burst), float(rule.rate_limit.burst), now
                    )
                if rule.concurrency is not None:
                    limit.semaphore = asyncio.Semaphore(rule.concurrency)
                if rule.circuit_breaker is not None:
                    limit.breaker = _Breaker(
                        rule.circuit_breaker.failures, parse_duration(rule.circuit_breaker.reset_after)
                    )

    @contextlib.asynccontextmanager
    async def around(self, operation: CompiledOperation) -> AsyncIterator[None]:
        limit = self._limits.get(operation.system)
        if limit is None:
            yield
            return
        self._check_breaker(limit, operation.system)
        if limit.bucket is not None:
            waited = await self._take(limit)
            if waited > 0 and self.on_wait is not None:
                self.on_wait(operation.system, waited)
        semaphore = limit.semaphore or contextlib.nullcontext()
        async with semaphore:
            try:
                yield
            except ConnectorError as exc:
                if limit.breaker is not None and exc.retriable:
                    self._failed(limit.breaker)
                raise
            else:
                if limit.breaker is not None:
                    limit.breaker.consecutive = 0
                    limit.breaker.opened_at = None
                    limit.breaker.probing = False

    def _check_breaker(self, limit: _SystemLimit, system: str) -> None:
        breaker = limit.breaker
        if breaker is None or breaker.opened_at is None:
            return
        if self.clock.time() - breaker.opened_at < breaker.reset_after or breaker.probing:
            raise ConnectorError(
                f"system {system!r}: circuit open (policy)", reason="circuit_open", error_class="retriable"
            )
        breaker.probing = True  # half-open: let one call through

    def _failed(self, breaker: _Breaker) -> None:
        breaker.consecutive += 1
        breaker.probing = False
        if breaker.consecutive >= breaker.failures:
            breaker.opened_at = self.clock.time()

    def breaker_states(self) -> dict[str, str]:
        """system → its Policy circuit breaker's state: closed, open or half_open."""
        states = {}
        for system, limit in self._limits.items():
            breaker = limit.breaker
            if breaker is None:
                continue
            if breaker.probing:
                states[system] = "half_open"
            elif breaker.opened_at is None:
                states[system] = "closed"
            else:  # open; the next call after reset_after probes
                states[system] = "open"
        return states

    async def _take(self, limit: _SystemLimit) -> float:
        """Take a token, waiting for one if needed; returns the seconds waited."""
        bucket = limit.bucket
        assert bucket is not None
        waited = 0.0
        while True:
            async with limit.lock:
                now = self.clock.time()
                bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.rate)
                bucket.updated = now
                if bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return waited
                wait = (1 - bucket.tokens) / bucket.rate
            await self.clock.sleep(wait)
            waited += wait
