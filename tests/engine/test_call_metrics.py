"""What the executor tells its observer about connector calls, for /metrics: each call's time with
its status class (2xx..5xx, or the failure), waits for a Policy rate limit, and the state of Policy
circuit breakers. Time comes from the test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runtime.engine.connectors import ConnectorPool
from runtime.engine.executor import ExecutionObserver, Executor
from runtime.engine.plan import Plan
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]


class Recorder(ExecutionObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.waits: list[tuple[str, float]] = []

    def connector_called(self, system: str, operation: str, status_class: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((system, operation, status_class))

    def rate_limit_waited(self, system: str, seconds: float) -> None:
        self.waits.append((system, seconds))


def observed(plan: Plan, mocks: dict[str, Any]) -> tuple[Harness, Recorder]:
    h = Harness(plan, mocks)
    recorder = Recorder()
    # the harness's executor, rebuilt with the recorder and a pool of its own
    h.executor = Executor(
        plan,
        h.store,
        clock=h.clock,
        secrets=h.secrets,
        env=lambda name: None,
        connectors=ConnectorPool(plan, h.secrets, lambda name: None, mocks=h.mocks),
        observer=recorder,
    )
    return h, recorder


async def run_flow(h: Harness) -> str:
    await h.store.open()
    created = await h.executor.submit("f", {})
    return (await h.executor.execute(created.run)).status


async def test_each_call_is_timed_with_its_status_class(make_plan: Build) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - call: erp.read
  - call: erp.create
    with: {body: {}}
    retry: {attempts: 1}
    on_error: continue
  - call: erp.notify
    retry: {attempts: 1}
    on_error: continue
""")
    mocks = {
        "erp.read": {"output": {}},
        "erp.create": {"error": {"status": 503, "message": "down"}},
        "erp.notify": {"error": {"reason": "timeout", "message": "slow"}},
    }
    h, recorder = observed(plan, mocks)
    assert await run_flow(h) == "succeeded"
    assert recorder.calls == [
        ("erp", "erp.read", "2xx"),
        ("erp", "erp.create", "5xx"),
        ("erp", "erp.notify", "timeout"),
    ]


async def test_rate_limit_waits_are_reported_with_the_time_waited(make_plan: Build) -> None:
    plan = make_plan("""
kind: Policy
name: limits
rules:
  - id: erp-rate
    match: {system: erp}
    rate_limit: {per_second: 2, burst: 2}
---
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - foreach: "{{ range(6) }}"
    steps:
      - call: erp.create
        with: {body: "{{ item }}"}
""")
    h, recorder = observed(plan, {"erp.create": {"output": {}}})
    assert await run_flow(h) == "succeeded"
    assert [system for system, _ in recorder.waits] == ["erp"] * 4  # 2 at once, then 4 waited
    assert sum(seconds for _, seconds in recorder.waits) == pytest.approx(2.0, abs=0.01)


async def test_policy_circuit_breaker_states(make_plan: Build) -> None:
    plan = make_plan("""
kind: Policy
name: limits
rules:
  - id: erp-breaker
    match: {system: erp}
    circuit_breaker: {failures: 2, reset_after: 30s}
---
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - foreach: "{{ range(3) }}"
    steps:
      - call: erp.create
        with: {body: "{{ item }}"}
        retry: {attempts: 1}
        on_error: continue
""")
    h, recorder = observed(plan, {"erp.create": {"error": {"status": 503, "message": "down"}}})
    assert h.executor.limits.breaker_states() == {"erp": "closed"}
    assert await run_flow(h) == "succeeded"
    assert h.executor.limits.breaker_states() == {"erp": "open"}
    assert [c[2] for c in recorder.calls] == ["5xx", "5xx"]  # the third was refused by the open breaker
