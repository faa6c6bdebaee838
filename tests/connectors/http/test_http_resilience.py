"""Circuit breaker, token-bucket rate limit and Retry-After parsing, driven by a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.http.breaker import BreakerOpen, CircuitBreaker
from connectors.http.ratelimit import TokenBucket
from connectors.http.retry_after import parse_retry_after
from runtime.connector_api import CallRequest, ConnectorError
from tests.connectors.http.http_target import FakeClock, Reply, json_reply, make_connector, run


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the loop until `condition()` holds (a generous bound only against hangs)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.005)


def test_breaker_closed_open_half_open_closed(serve):
    healthy = {"value": False}
    server = serve(lambda seen: json_reply({"ok": True}) if healthy["value"] else Reply(503))
    clock = FakeClock()
    connector = make_connector(server.url, clock=clock, circuit_breaker={"failures": 3, "reset_after": "30s"})

    async def attempt() -> ConnectorError | None:
        try:
            await connector.call(CallRequest("get", {}))
        except ConnectorError as exc:
            return exc
        return None

    async def scenario() -> None:
        assert connector.breaker is not None
        for _ in range(3):  # closed: three retriable failures
            error = await attempt()
            assert error is not None and error.status == 503
        assert connector.breaker.state == "open" and len(server.requests) == 3

        error = await attempt()  # open: fails fast, server untouched
        assert error is not None
        assert (error.reason, error.error_class, error.retry_after) == ("circuit_open", "retriable", 30)
        assert len(server.requests) == 3

        clock.advance(30)  # half-open: one probe, which fails → open again
        error = await attempt()
        assert error is not None and error.status == 503 and len(server.requests) == 4
        assert connector.breaker.state == "open"
        error = await attempt()
        assert error is not None and error.reason == "circuit_open"

        clock.advance(30)  # half-open again: the probe succeeds → closed
        healthy["value"] = True
        assert await attempt() is None
        assert connector.breaker.state == "closed"
        assert await attempt() is None and len(server.requests) == 6
        await connector.aclose()

    run(scenario())


def test_breaker_lets_one_probe_through_at_a_time(serve):
    server = serve(lambda seen: Reply(503) if seen.path == "/fail" else Reply(200, "ok", delay=1.0))
    clock = FakeClock()
    ops = {"fail": {"path": "/fail"}, "slow": {"path": "/slow"}}
    connector = make_connector(
        server.url, clock=clock, operations=ops, circuit_breaker={"failures": 1, "reset_after": 5}
    )

    async def scenario() -> None:
        with pytest.raises(ConnectorError):
            await connector.call(CallRequest("fail", {}))
        clock.advance(5)
        probe = asyncio.create_task(connector.call(CallRequest("slow", {})))
        await until(lambda: any(seen.path == "/slow" for seen in server.requests))  # the probe is in flight
        with pytest.raises(ConnectorError) as caught:
            await connector.call(CallRequest("slow", {}))
        assert caught.value.reason == "circuit_open" and caught.value.retry_after is None
        assert (await probe).output == "ok"
        assert connector.breaker is not None and connector.breaker.state == "closed"
        await connector.aclose()

    run(scenario())


def test_breaker_ignores_fatal_errors_and_counts_consecutive_failures(serve):
    statuses = iter([503, 503, 404, 503, 503, 200])
    server = serve(lambda seen: Reply(next(statuses)))
    connector = make_connector(server.url, clock=FakeClock(), circuit_breaker={"failures": 3, "reset_after": 5})

    async def scenario() -> None:
        for _ in range(5):
            with pytest.raises(ConnectorError) as caught:
                await connector.call(CallRequest("get", {}))
            assert caught.value.reason == "status"  # never circuit_open: the 404 broke the streak
        await connector.call(CallRequest("get", {}))
        await connector.aclose()

    run(scenario())


def test_breaker_unit_late_results_do_not_close_it():
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_after=10, clock=clock)
    early = breaker.admit()
    breaker.failure(breaker.admit())
    assert breaker.state == "open"
    breaker.success(early)  # admitted before the breaker opened: ignored
    assert breaker.state == "open"
    with pytest.raises(BreakerOpen):
        breaker.admit()


def test_token_bucket_unit():
    clock = FakeClock()
    bucket = TokenBucket(per_second=2, burst=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)
    assert bucket.try_acquire() and not bucket.try_acquire()
    clock.advance(100)
    assert bucket.available == 3  # never more than the burst


def test_token_bucket_waits_for_the_clock():
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async def scenario() -> None:
        bucket = TokenBucket(per_second=4, burst=1, clock=clock, sleep=sleep)
        for _ in range(3):
            await bucket.acquire()

    run(scenario())
    assert slept == [0.25, 0.25]


def test_rate_limit_allows_the_burst_then_one_per_interval(serve):
    server = serve()
    clock = FakeClock()  # frozen unless the test moves it
    connector = make_connector(server.url, clock=clock, rate_limit={"per_second": 16, "burst": 3})

    async def scenario() -> None:
        tasks = [asyncio.create_task(connector.call(CallRequest("get", {}))) for _ in range(6)]
        # the clock stands still, so no token can come: once the burst is done, exactly it has been sent
        await until(lambda: sum(t.done() for t in tasks) == 3)
        assert len(server.requests) == 3  # the burst, then everyone waits for the clock
        clock.advance(1 / 16)  # one token
        await until(lambda: sum(t.done() for t in tasks) == 4)
        assert len(server.requests) == 4
        clock.advance(2 / 16)  # two tokens
        await until(lambda: all(t.done() for t in tasks))
        assert len(server.requests) == 6
        await asyncio.gather(*tasks)
        await connector.aclose()

    run(scenario())


def test_rate_limit_wait_is_bounded_by_the_timeout(serve):
    server = serve()
    connector = make_connector(server.url, clock=FakeClock(), rate_limit={"per_second": 1, "burst": 1}, timeout=0.2)

    async def scenario() -> None:
        await connector.call(CallRequest("get", {}))
        with pytest.raises(ConnectorError) as caught:
            await connector.call(CallRequest("get", {}))
        assert (caught.value.reason, caught.value.error_class) == ("rate_limited", "retriable")
        await connector.aclose()

    run(scenario())
    assert len(server.requests) == 1


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120),
        ("0", 0),
        (" 5 ", 5),
        ("99999999999999999999999", 300),
        ("Sun, 01 Mar 2026 12:01:00 GMT", 60),
        ("Sunday, 01-Mar-26 12:00:30 GMT", 30),
        ("Sun Mar  1 12:00:10 2026", 10),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0),
        ("Mon, 01 Mar 2027 12:00:00 GMT", 300),
        ("-5", None),
        ("soon", None),
        ("1.5", 1.5),  # Shopify sends `Retry-After: 2.0`
        ("", None),
        (None, None),
    ],
)
def test_retry_after_parsing(value, expected):
    assert parse_retry_after(value, now=NOW, cap=300) == expected
