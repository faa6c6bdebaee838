"""The executor on a memory store with mocked operations and a test clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.engine.plan import Plan
from runtime.spec.flowtest import Mock
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]


async def run(h: Harness, flow: str, payload: Any = None, **kwargs: Any) -> Any:
    await h.store.open()
    result = await h.executor.run_flow(flow, payload if payload is not None else {}, **kwargs)
    result.journal = await h.store.journal(result.run.id)
    return result


async def test_steps_run_in_order_with_outputs_and_vars(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
vars: {factor: 2}
steps:
  - id: read
    call: erp.read
  - id: total
    set: {total: "{{ steps.read.output.items | sum_of('price') * vars.factor }}"}
  - id: create
    call: erp.create
    with: {body: {total: "{{ vars.total }}", first: "{{ steps.read.output['items'][0].price }}"}}
""")
    h = harness(
        plan, {"erp.read": {"output": {"items": [{"price": 0.1}, {"price": 0.2}]}}, "erp.create": {"output": {"id": 7}}}
    )
    result = await run(h, "f")
    assert result.status == "succeeded"
    assert [r.step_key for r in result.journal] == ["read", "total", "create"]
    (create,) = [c for c in result.calls if c.operation == "erp.create"]
    assert str(create.params["body"]["total"]) == "0.6"
    assert result.output == {"id": 7}


async def test_retry_then_success_uses_backoff_on_the_test_clock(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: create
    call: erp.create
    with: {body: 1}
    retry: {attempts: 4, initial: 2s, max: 10s, jitter: false, on: [5xx, 429]}
""")
    h = harness(
        plan,
        {"erp.create": {"sequence": [{"error": {"status": 503}}, {"error": {"status": 429}}, {"output": {"id": 1}}]}},
    )
    result = await run(h, "f")
    assert result.status == "succeeded"
    assert h.clock.slept == [2.0, 4.0]
    assert result.journal[0].attempts == 3


async def test_retry_does_not_cover_other_failures(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
on_failure: fail
steps:
  - call: erp.create
    with: {body: 1}
    retry: {attempts: 5, on: [5xx]}
""")
    h = harness(plan, {"erp.create": {"error": {"status": 409, "message": "conflict"}}})
    result = await run(h, "f")
    assert result.status == "failed"
    assert h.mocks.counts["erp.create"] == 1
    assert result.error["status"] == 409


async def test_exhausted_retries_dead_letter_the_run(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - call: erp.create
    with: {body: 1}
    retry: {attempts: 3, initial: 1s}
""")
    h = harness(plan, {"erp.create": {"error": {"reason": "timeout"}}})
    result = await run(h, "f")
    assert result.status == "dead_lettered"
    (letter,) = await h.store.list_dead_letters()
    assert letter.run_id == result.run.id and letter.reason == "timeout from erp.create: mocked failure"
    assert h.mocks.counts["erp.create"] == 3


async def test_on_error_continue_goto_and_dead_letter(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: cont
trigger: {manual: {}}
steps:
  - id: a
    call: erp.create
    with: {body: 1}
    on_error: continue
  - id: b
    set: {a_failed: "{{ steps.a.error is defined and steps.a.error.status == 400 }}"}
---
kind: Flow
name: jump
trigger: {manual: {}}
steps:
  - id: a
    call: erp.create
    with: {body: 1}
    on_error: {goto: fallback}
  - id: skipped
    set: {ran: true}
  - id: fallback
    set: {fallback: true}
---
kind: Flow
name: dl
trigger: {manual: {}}
on_failure: fail
steps:
  - call: erp.create
    with: {body: 1}
    on_error: dead_letter
""")
    mocks = {"erp.create": {"error": {"status": 400}}}
    h = harness(plan, mocks)
    result = await run(h, "cont")
    assert result.status == "succeeded" and result.output == {"a_failed": True}
    result = await run(h, "jump")
    assert [r.step_key for r in result.journal] == ["a", "fallback"]
    result = await run(h, "dl")
    assert result.status == "dead_lettered"


async def test_compensation_runs_in_reverse_order_and_is_journaled(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: first
    call: erp.create
    with: {body: first}
    compensate: {call: erp.cancel, with: {id: "{{ steps.first.output.id }}"}}
  - id: second
    call: erp.create
    with: {body: second}
    compensate: {call: erp.cancel, with: {id: "{{ steps.second.output.id }}"}}
  - id: boom
    call: erp.notify
""")
    h = harness(
        plan,
        {
            "erp.create": {"sequence": [{"output": {"id": "A"}}, {"output": {"id": "B"}}]},
            "erp.cancel": {"output": {"ok": True}},
            "erp.notify": {"error": {"status": 400}},
        },
    )
    result = await run(h, "f")
    assert result.status == "dead_lettered"
    cancels = [c.params["id"] for c in result.calls if c.operation == "erp.cancel"]
    assert cancels == ["B", "A"]
    keys = [(r.step_key, r.status) for r in result.journal]
    assert keys[-2:] == [("second~compensate", "compensated"), ("first~compensate", "compensated")]


async def test_resume_skips_completed_steps(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: one
    call: erp.create
    with: {body: 1}
  - id: two
    call: erp.notify
    retry: {attempts: 3, initial: 5s}
""")
    h = harness(
        plan,
        {"erp.create": {"output": {"id": 1}}, "erp.notify": {"error": {"reason": "connect"}}},
        inline_retry_limit=0.0,
    )
    await h.store.open()
    created = await h.executor.submit("f", {})
    first = await h.executor.execute(created.run)
    assert first.status == "retrying"
    stored = await h.store.get_run(created.run.id)
    assert stored is not None and stored.status == "retrying" and stored.due_at is not None
    h.mocks.mocks["erp.notify"] = Mock.model_validate({"output": {"sent": True}})
    second = await h.executor.execute(stored)
    assert second.status == "succeeded"
    assert h.mocks.counts == {"erp.create": 1, "erp.notify": 2}
    journal = await h.store.journal(created.run.id)
    assert [r.step_key for r in journal] == ["one", "two"]
    assert journal[1].attempts == 2


async def test_idempotency_key_default_is_stable_and_sent(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: a
    call: erp.create
    with: {body: 1}
  - id: b
    call: erp.create
    with: {body: 2}
    idempotency_key: "order-{{ input.id }}"
""")
    h = harness(plan, {"erp.create": {"output": {}}})
    result = await run(h, "f", {"id": 42})
    keys = [c.idempotency_key for c in result.calls]
    assert keys[1] == "order-42"
    assert keys[0] and len(keys[0]) == 32 and keys[0] != keys[1]


async def test_switch_filter_foreach_emit_respond(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - filter: "{{ input.lines | length > 0 }}"
  - id: each
    foreach: "{{ input.lines }}"
    as: line
    concurrency: 3
    steps:
      - id: amount
        set: {last: "{{ line.qty * line.price }}"}
      - id: double
        set: {double: "{{ steps.amount.output.last * 2 }}"}
  - id: route
    switch:
      - when: "{{ input.lines | length > 5 }}"
        steps: [{set: {size: big}}]
      - steps: [{set: {size: small}}]
  - emit: {event: order.seen, data: {n: "{{ steps.each.output | length }}"}}
  - respond:
      status: 201
      body: {size: "{{ vars.size }}", doubles: "{{ steps.each.output | map(attribute='double') | list }}"}
""")
    h = harness(plan, {})
    result = await run(h, "f", {"lines": [{"qty": 1, "price": 0.5}, {"qty": 3, "price": 0.1}]})
    assert result.status == "succeeded"
    assert result.response["status"] == 201
    assert [str(x) for x in result.response["body"]["doubles"]] == ["1.0", "0.6"]
    assert result.response["body"]["size"] == "small"
    assert [e.name for e in result.emitted] == ["order.seen"]
    assert "each[1].double" in [r.step_key for r in result.journal]
    filtered = await run(h, "f", {"lines": []})
    assert filtered.status == "filtered"


async def test_business_exception_and_dry_run(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
owner: order-ops
trigger: {manual: {}}
steps:
  - id: read
    call: erp.read
  - if: "{{ steps.read.output | length == 0 }}"
    fail: {code: NOTHING, message: "nothing for {{ input.id }}"}
  - call: erp.create
    with: {body: "{{ steps.read.output }}"}
""")
    h = harness(plan, {"erp.read": {"output": []}})
    result = await run(h, "f", {"id": "X"})
    assert result.status == "exception"
    assert result.error == {"class": "business", "code": "NOTHING", "message": "nothing for X", "route_to": "order-ops"}
    dry = harness(plan, {"erp.read": {"output": [1]}}, dry_run=True)
    result = await run(dry, "f", {"id": "Y"})
    assert result.status == "succeeded"
    assert [(c.operation, c.status) for c in result.calls] == [("erp.read", "ok"), ("erp.create", "planned")]
    assert "erp.create" not in dry.mocks.counts


async def test_secrets_never_reach_the_journal_or_errors(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: token
    set: {auth: "Bearer {{ secret('CANARY_TOKEN') }}"}
  - call: erp.create
    with: {body: {token: "{{ secret('CANARY_TOKEN') }}"}}
""")
    canary = "canary-7f3a9c-secret"
    h = harness(
        plan,
        {"erp.create": {"error": {"status": 400, "message": f"rejected token {canary}", "body": {"echo": canary}}}},
        secrets={"CANARY_TOKEN": canary},
    )
    result = await run(h, "f")
    assert result.status == "dead_lettered"
    dump = repr([(r.input, r.output, r.error) for r in result.journal]) + repr(result.error)
    dump += repr(await h.store.list_dead_letters()) + repr(await h.store.get_run(result.run.id))
    assert canary not in dump
    assert "***" in dump


async def test_wait_suspends_until_an_event_or_the_timeout(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: ack
    wait: {event: erp.ack, match: "{{ event.ref == input.id }}", timeout: 1h}
  - set: {acked: "{{ steps.ack.output.ref }}"}
""")
    h = harness(plan, {})
    await h.store.open()
    created = await h.executor.submit("f", {"id": "R1"})
    first = await h.executor.execute(created.run)
    assert first.status == "waiting"
    stored = await h.store.get_run(created.run.id)
    assert stored is not None and stored.due_at == h.clock.time() + 3600
    done = await h.executor.execute(stored, events=[{"name": "erp.ack", "data": {"ref": "R1"}}])
    assert done.status == "succeeded" and done.output == {"acked": "R1"}


async def test_step_timeout_is_a_retriable_failure(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
on_failure: fail
steps:
  - call: erp.create
    with: {body: 1}
    timeout: 50ms
    retry: {attempts: 2, initial: 10ms, on: [timeout]}
""")
    h = harness(plan, {"erp.create": {"output": {}}})

    async def slow(target: str, request: Any) -> Any:
        import asyncio

        h.mocks.counts[target] = h.mocks.counts.get(target, 0) + 1
        await asyncio.sleep(1)

    h.mocks.respond = slow  # type: ignore[method-assign]
    result = await run(h, "f")
    assert result.status == "failed" and result.error["reason"] == "timeout"
    assert h.mocks.counts["erp.create"] == 2


async def test_subflow_output(make_plan: Build, harness: Callable[..., Harness]) -> None:
    plan = make_plan("""
kind: Flow
name: parent
trigger: {manual: {}}
steps:
  - id: child
    flow: child
    with: {n: "{{ input.n }}"}
  - set: {result: "{{ steps.child.output.doubled }}"}
---
kind: Flow
name: child
trigger: {manual: {}}
steps:
  - set: {doubled: "{{ input.n * 2 }}"}
""")
    h = harness(plan, {})
    result = await run(h, "parent", {"n": 21})
    assert result.status == "succeeded" and result.output == {"result": 42}
    assert "child/s0" in [r.step_key for r in result.journal]
