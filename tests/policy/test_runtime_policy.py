"""Run-time policy in the executor: holds, maintenance windows, echo suppression and hop limits,
per-system rate limits, masking, and parking of out-of-order state transitions (R7)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from runtime.engine.plan import Plan
from runtime.policy.mask import Masker, masker_for_flow
from runtime.store.base import RunRecord
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]


async def _submit(h: Harness, flow: str, payload: Any, headers: dict[str, str] | None = None) -> RunRecord:
    await h.store.open()
    created = await h.executor.submit(flow, payload, headers=headers or {})
    return created.run


async def test_hold_suspends_until_approved(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Policy
name: controls
rules:
  - id: big-orders
    match: {operation: erp.create}
    when: "{{ params.body.total > 1000 }}"
    action: hold
    approvers: finance-ops
---
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: post
    call: erp.create
    with: {body: {total: "{{ input.total }}"}}
""")
    h = harness(plan, {"erp.create": {"output": {"id": 1}}})
    small = await _submit(h, "f", {"total": 10})
    assert (await h.executor.execute(small)).status == "succeeded"
    big = await _submit(h, "f", {"total": 5000})
    held = await h.executor.execute(big)
    assert held.status == "held"
    stored = await h.store.get_run(big.id)
    assert stored is not None and stored.meta["hold"]["rule"] == "big-orders"
    assert stored.meta["hold"]["approvers"] == "finance-ops"
    assert h.mocks.counts["erp.create"] == 1
    await h.store.update_run(
        big.id, {"status": "queued", "meta": {**stored.meta, "approvals": {"post": {"decision": "approved"}}}}
    )
    approved = await h.store.get_run(big.id)
    assert approved is not None
    assert (await h.executor.execute(approved)).status == "succeeded"
    assert h.mocks.counts["erp.create"] == 2


async def test_maintenance_window_buffers_writes_until_it_ends(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Policy
name: windows
rules:
  - id: erp-maintenance
    match: {system: erp}
    window: {cron: "0 10 * * *", duration: 2h, timezone: UTC}
    action: buffer
---
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - call: erp.read
  - call: erp.create
    with: {body: 1}
""")
    h = harness(plan, {"erp.read": {"output": []}, "erp.create": {"output": {}}})  # clock: 10:00 UTC
    h.clock.advance(1800)
    run = await _submit(h, "f", {})
    result = await h.executor.execute(run)
    assert result.status == "retrying"
    stored = await h.store.get_run(run.id)
    assert stored is not None
    end = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC).timestamp()
    assert stored.due_at == end
    assert h.mocks.counts == {"erp.read": 1}
    h.clock.advance(end - h.clock.time())
    assert (await h.executor.execute(stored)).status == "succeeded"
    assert h.mocks.counts == {"erp.read": 1, "erp.create": 1}


async def test_echo_is_suppressed_and_hop_limit_stops_loops(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: back-to-erp
source: {system: crm, entity: thing}
trigger: {manual: {}}
steps:
  - id: write
    call: erp.create
    with: {body: "{{ input }}"}
""")
    h = harness(plan, {"erp.create": {"output": {"id": 1}}})
    first = await h.executor.execute(await _submit(h, "back-to-erp", {"a": 1}))
    assert first.status == "succeeded" and h.mocks.counts["erp.create"] == 1
    assert len(first.calls) == 1
    echo_headers = {"X-Syncline-Origin": "erp", "X-Syncline-Chain": "erp-to-crm", "X-Syncline-Hops": "1"}
    echo = await h.executor.execute(await _submit(h, "back-to-erp", {"a": 2}, echo_headers))
    assert echo.status == "succeeded"
    assert [c.status for c in echo.calls] == ["suppressed"]
    assert h.mocks.counts["erp.create"] == 1
    looping = {"X-Syncline-Origin": "webshop", "X-Syncline-Chain": "a,b,c,d,e", "X-Syncline-Hops": "5"}
    stopped = await h.executor.execute(await _submit(h, "back-to-erp", {"a": 3}, looping))
    assert stopped.status == "filtered" and "hop limit" in stopped.error["message"]
    assert h.mocks.counts["erp.create"] == 1


async def test_outgoing_calls_carry_provenance(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
source: {system: crm, entity: thing}
trigger: {manual: {}}
steps:
  - call: erp.create
    with: {body: 1}
""")
    h = harness(plan, {"erp.create": {"output": {}}})
    seen: list[dict[str, str]] = []
    original = h.mocks.respond

    async def capture(target: str, request: Any) -> Any:
        seen.append(request.headers)
        return await original(target, request)

    h.mocks.respond = capture  # type: ignore[method-assign]
    await h.executor.execute(await _submit(h, "f", {}))
    assert seen[0]["X-Syncline-Origin"] == "crm"
    assert seen[0]["X-Syncline-Chain"] == "f" and seen[0]["X-Syncline-Hops"] == "1"


async def test_system_rate_limit_is_shared(make_plan: Build, harness: Callable[..., Harness]) -> None:
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
    h = harness(plan, {"erp.create": {"output": {}}})
    started = h.clock.time()
    result = await h.executor.execute(await _submit(h, "f", {}))
    assert result.status == "succeeded"
    assert h.clock.time() - started == pytest.approx(2.0, abs=0.01)  # 2 at once, then 4 at 2/s


def test_masker_masks_simple_fields_anywhere_and_paths_from_the_root() -> None:
    masker = Masker(["$.email", "$.customer.tax_id"])
    value = {
        "email": "a@b.c",
        "customer": {"email": "x@y.z", "tax_id": "DE1", "name": "Acme"},
        "lines": [{"email": None}],
    }
    assert masker(value) == {
        "email": "***",
        "customer": {"email": "***", "tax_id": "***", "name": "Acme"},
        "lines": [{"email": None}],
    }
    assert value["email"] == "a@b.c"


def test_mask_rules_apply_to_flows_touching_the_entity(make_plan: Build) -> None:
    plan = make_plan("""
kind: Policy
name: pii
rules:
  - id: mask-pii
    match: {entity: customer}
    mask: ["$.email"]
---
kind: Flow
name: touches-customers
source: {system: crm, entity: customer}
trigger: {manual: {}}
steps: [{call: erp.read}]
---
kind: Flow
name: other
trigger: {manual: {}}
steps: [{call: erp.read}]
""")
    assert masker_for_flow(plan, "touches-customers")({"email": "a"}) == {"email": "***"}
    assert masker_for_flow(plan, "other")({"email": "a"}) == {"email": "a"}


STATES = """
kind: StateMachine
name: order-lifecycle
entity: order
initial: received
park_timeout: 1h
transitions:
  received: [validated, rejected]
  validated: [submitted]
  submitted: [accepted]
  accepted: [shipped]
""" + "".join(
    f"""---
kind: Flow
name: to-{state}
trigger: {{manual: {{}}}}
steps:
  - transition: {{machine: order-lifecycle, key: "{{{{ input.order }}}}", to: {state}}}
"""
    for state in ("validated", "submitted", "accepted", "shipped", "rejected")
)


async def _deliver_all(h: Harness, order: str, events: list[str]) -> str | None:
    await h.store.open()
    for target in events:
        run = (await h.executor.submit(f"to-{target}", {"order": order})).run
        await h.executor.execute(run)
        while True:  # re-drive parked runs that became due (what the service's workers do)
            due = [r for r in await h.store.claim("t", now=h.clock.time(), lease=30, limit=10)]
            if not due:
                break
            for record in due:
                await h.executor.execute(record)
    return await h.store.get_state("order-lifecycle", order)


@pytest.mark.parametrize("events", list(itertools.permutations(["validated", "submitted", "accepted", "shipped"])))
async def test_r7_out_of_order_events_end_in_the_in_order_state(
    make_plan: Build, harness: Callable[..., Harness], events: tuple[str, ...]
) -> None:
    plan = make_plan(STATES)
    h = harness(plan, {})
    assert await _deliver_all(h, "O-1", list(events)) == "shipped"


async def test_an_invalid_transition_is_a_business_exception_and_parking_times_out(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan(STATES)
    h = harness(plan, {})
    await h.store.open()
    await _deliver_all(h, "O-2", ["validated"])
    invalid = await h.executor.execute((await h.executor.submit("to-rejected", {"order": "O-2"})).run)
    assert invalid.status == "exception" and invalid.error["code"] == "INVALID_TRANSITION"
    early = (await h.executor.submit("to-accepted", {"order": "O-3"})).run
    assert (await h.executor.execute(early)).status == "waiting"
    h.clock.advance(3601)
    (due,) = await h.store.claim("t", now=h.clock.time(), lease=30)
    timed_out = await h.executor.execute(due)
    assert timed_out.status == "dead_lettered" and timed_out.error["reason"] == "parked_timeout"


async def test_business_exceptions_notify_the_owning_team(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
owner: order-ops
trigger: {manual: {}}
on_exception:
  call: erp.notify
  with: {team: "{{ exception.route_to }}", code: "{{ exception.code }}", order: "{{ input.id }}"}
steps:
  - fail: {code: NO_CUSTOMER, message: "order {{ input.id }} has no customer"}
""")
    h = harness(plan, {"erp.notify": {"output": {}}})
    result = await h.executor.execute(await _submit(h, "f", {"id": "O-9"}))
    assert result.status == "exception"
    (notice,) = [c for c in result.calls if c.operation == "erp.notify"]
    assert notice.params == {"team": "order-ops", "code": "NO_CUSTOMER", "order": "O-9"}
