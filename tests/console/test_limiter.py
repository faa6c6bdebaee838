"""The console's sign-in limiter on its own: a sliding window per address, and a bounded memory."""

from __future__ import annotations

from runtime.clock import FakeClock
from runtime.console.limiter import SignInLimiter


def test_failures_count_in_a_sliding_window() -> None:
    clock = FakeClock()
    limiter = SignInLimiter(clock.time, attempts=2, window=60)
    limiter.failed("a")
    clock.advance(45)
    limiter.failed("a")
    assert limiter.retry_after("a") == 15 and limiter.retry_after("b") is None
    clock.advance(15)
    assert limiter.retry_after("a") is None


def test_it_forgets_the_least_recently_failing_addresses_first() -> None:
    clock = FakeClock()
    limiter = SignInLimiter(clock.time, attempts=1, window=60, max_clients=2)
    for address in ("a", "b", "a", "c"):  # "b" failed least recently when "c" came
        limiter.failed(address)
    assert limiter.retry_after("a") and limiter.retry_after("c") and limiter.retry_after("b") is None
