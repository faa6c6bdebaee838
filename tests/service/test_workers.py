"""Workers: per-key ordering with parallel keys, runs of a dead worker resumed from their journal after
the lease expires, and retries that outlive the process that scheduled them."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from runtime.engine.executor import Executor
from runtime.service.service import load_plan
from runtime.store.base import StepRecord
from runtime.store.factory import open_store
from tests.service.conftest import StartNode
from tests.service.harness import Sink, until, write_project

ORDERED = """
trigger:
  webhook: {path: /hooks/work, ordering_key: "{{ input.key }}"}
steps:
  - id: work
    call: sink.post
    with: {path: work, body: "{{ input }}"}
"""

TWO_STEPS = """
trigger:
  webhook: {path: /hooks/two}
steps:
  - id: first
    call: sink.post
    with: {path: first, body: "{{ input }}"}
  - id: second
    call: sink.post
    with: {path: second, body: {from_first: "{{ steps.first.output.token }}"}}
"""

RETRYING = """
trigger:
  webhook: {path: /hooks/retry}
steps:
  - id: push
    call: sink.post
    with: {path: flaky, body: "{{ input }}"}
    retry: {attempts: 3, backoff: fixed, initial: 1s, max: 1s, jitter: false}
"""


async def test_same_ordering_key_runs_one_at_a_time_in_acceptance_order(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    sink.rule("/work", delay=0.25)
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ordered": ORDERED}), workers=4)
    sent = [{"key": key, "n": n} for n in range(3) for key in ("A", "B")]
    ids = []
    for item in sent:  # one after the other: acceptance order is the sending order
        answer = await node.client.post("/hooks/work", json=item)
        assert answer.status_code == 202
        ids.append(answer.json()["run_id"])
    for run_id in ids:
        await node.wait_run(run_id, timeout=15)
    hits = sink.on("/work")
    for key in ("A", "B"):
        mine = sorted((h for h in hits if h.body["key"] == key), key=lambda h: h.start)
        assert [h.body["n"] for h in mine] == [0, 1, 2], f"key {key} out of order"
        for earlier, later in itertools.pairwise(mine):
            assert earlier.end <= later.start, f"key {key}: runs overlapped"
    a_hits = [h for h in hits if h.body["key"] == "A"]
    b_hits = [h for h in hits if h.body["key"] == "B"]
    overlaps = sum(1 for a in a_hits for b in b_hits if a.start < b.end and b.start < a.end)
    assert overlaps >= 1, "different keys should run in parallel"


async def test_run_of_a_dead_worker_resumes_from_its_journal(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    project = write_project(tmp_path / "p", sink.url, {"two": TWO_STEPS})
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    plan = load_plan(project)
    store = open_store(store_url, project)
    await store.open()
    new = Executor(plan, store).new_run(plan.flows["two"], {"id": "D-1"}, trigger="webhook")
    now = time.time()
    new.status, new.lease_owner, new.lease_expires = "running", "dead-node/w0", now - 1
    run = (await store.create_run(new, now=now - 5)).run
    await store.record_step(
        StepRecord(
            run_id=run.id,
            step_key="first",
            kind="call",
            status="succeeded",
            output={"token": "from-the-journal"},
            started_at=now - 4,
            finished_at=now - 3,
        )
    )
    await store.close()

    node = await nodes(project, store_url)
    done = await node.wait_run(run.id)
    assert done["status"] == "succeeded"
    assert sink.on("/first") == []
    assert [h.body for h in sink.on("/second")] == [{"from_first": "from-the-journal"}]
    assert [s["step"] for s in done["steps"]] == ["first", "second"]


async def test_live_lease_is_not_taken_over(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    project = write_project(tmp_path / "p", sink.url, {"two": TWO_STEPS})
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    plan = load_plan(project)
    store = open_store(store_url, project)
    await store.open()
    new = Executor(plan, store).new_run(plan.flows["two"], {"id": "D-2"}, trigger="webhook")
    lease_expires = time.time() + 1.0
    new.status, new.lease_owner, new.lease_expires = "running", "other-node/w0", lease_expires
    run = (await store.create_run(new, now=time.time())).run
    await store.close()
    node = await nodes(project, store_url)
    assert (await node.wait_run(run.id, timeout=10))["status"] == "succeeded"
    assert sink.hits, "the run was taken over once its lease had expired"
    assert all(hit.start >= lease_expires for hit in sink.hits), "a call was made while another node held the lease"


async def test_retry_outlives_the_process(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/flaky", fail_next=1, fail_status=503)
    project = write_project(tmp_path / "p", sink.url, {"retrying": RETRYING})
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    first = await nodes(project, store_url, inline_retry_limit=0.1)
    run_id = (await first.client.post("/hooks/retry", json={"id": "R-1"})).json()["run_id"]
    waiting = await first.wait_run(run_id, {"retrying"})
    seen_at = time.time()
    (failed,) = sink.on("/flaky")
    # fixed 1 s backoff without jitter, counted from the failure: after the sink answered, before we looked
    assert waiting["due_at"] is not None
    assert failed.end + 1.0 <= waiting["due_at"] <= seen_at + 1.0
    metrics = (await first.client.get("/metrics")).text
    assert 'syncline_step_retries_total{flow="retrying",step="push"} 1.0' in metrics
    await first.stop()
    assert len(sink.on("/flaky")) == 1

    second = await nodes(project, store_url, inline_retry_limit=0.1)
    done = await second.wait_run(run_id, timeout=10)
    assert done["status"] == "succeeded"
    assert done["attempt"] >= 1
    calls = sink.on("/flaky")
    assert len(calls) == 2
    assert calls[0].headers["idempotency-key"] == calls[1].headers["idempotency-key"]
    step = done["steps"][-1]
    assert step["step"] == "push" and step["attempts"] == 2


async def test_queue_depth_drains(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ordered": ORDERED}), workers=2)
    answers = await asyncio.gather(*(node.client.post("/hooks/work", json={"key": f"K{n}", "n": n}) for n in range(30)))
    assert all(a.status_code == 202 for a in answers)

    async def drained() -> bool:
        return len(await node.runs(flow="ordered", status="succeeded", limit=100)) == 30

    await until(drained, timeout=20)
    assert len(sink.on("/work")) == 30


SLOW_CALL = """
trigger:
  webhook: {{path: /hooks/slow, mode: {mode}, sync_timeout: 10s}}
steps:
  - id: push
    call: sink.post
    with: {{path: slow, body: "{{{{ input }}}}"}}
"""


async def test_a_long_call_keeps_its_lease_so_no_other_worker_takes_the_run(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """With a 0.6 s lease and four workers polling every 50 ms, a 2 s call would be claimed again
    by another worker if its lease were not renewed; it is, inline (sync) and on a worker (async)."""
    sink.rule("/slow", delay=2.0)
    flows = {mode: SLOW_CALL.format(mode=mode) for mode in ("sync", "async")}
    for mode, text in flows.items():
        sink.reset()
        sink.rule("/slow", delay=2.0)
        node = await nodes(write_project(tmp_path / mode, sink.url, {"slow": text}), workers=4, lease=0.6)
        answer = await node.client.post("/hooks/slow", json={"n": 1}, timeout=15)
        run = await node.wait_run(answer.json()["run_id"], timeout=15)
        assert run["status"] == "succeeded", (mode, run)
        assert len(sink.on("/slow")) == 1, f"{mode}: the call was made {len(sink.on('/slow'))} times"
