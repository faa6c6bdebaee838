"""`mode: sync` webhooks: the caller gets the flow's `respond`, the run's outcome when there is no
`respond`, or a 202 with the run id when the flow takes longer than `sync_timeout`."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from runtime.store.base import StoreError
from runtime.store.factory import open_store
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until, write_project

VALIDATE = """
trigger:
  webhook: {path: /hooks/validate, mode: sync, sync_timeout: 3s, idempotency_key: "{{ input.id }}"}
steps:
  - id: check
    call: sink.post
    with: {path: check, body: "{{ input }}"}
  - id: answer
    respond:
      status: 201
      body: {accepted: true, id: "{{ input.id }}", seen: "{{ steps.check.output.n }}"}
      headers: {X-Order: "{{ input.id }}"}
  - id: after
    call: sink.post
    with: {path: after, body: {}}
"""

SLOW = """
trigger:
  webhook: {path: /hooks/slow, mode: sync, sync_timeout: 300ms}
steps:
  - id: slow
    call: sink.post
    with: {path: slow, body: "{{ input }}"}
  - id: answer
    respond: {status: 200, body: {done: true}}
"""

NO_RESPOND = """
trigger:
  webhook: {path: /hooks/plain, mode: sync, idempotency_key: "{{ input.id }}"}
steps:
  - id: call
    call: sink.post
    with: {path: plain, body: "{{ input }}"}
"""

FAILING = """
trigger:
  webhook: {path: /hooks/failing, mode: sync}
on_failure: fail
steps:
  - id: call
    call: sink.post
    with: {path: broken, body: "{{ input }}"}
"""

KEYED = """
trigger:
  webhook: {path: /hooks/keyed, mode: sync, sync_timeout: 5s, ordering_key: "{{ input.key }}"}
steps:
  - id: work
    call: sink.post
    with: {path: keyed, body: "{{ input }}"}
  - id: answer
    respond: {status: 200, body: {n: "{{ input.n }}"}}
"""

REJECTING = """
trigger:
  webhook: {path: /hooks/rejecting, mode: sync}
steps:
  - id: nope
    fail: {code: NOT_ALLOWED, message: "order {{ input.id }} is not allowed"}
"""


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    flows = {
        "validate": VALIDATE,
        "slow": SLOW,
        "plain": NO_RESPOND,
        "failing": FAILING,
        "rejecting": REJECTING,
        "keyed": KEYED,
    }
    return await nodes(write_project(tmp_path / "project", sink.url, flows))


async def test_sync_answer_comes_from_the_respond_step(node: Node, sink: Sink) -> None:
    answer = await node.client.post("/hooks/validate", json={"id": "S-1"})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"accepted": True, "id": "S-1", "seen": 1}
    assert answer.headers["x-order"] == "S-1"
    runs = await node.runs(flow="validate")
    run = await node.wait_run(runs[0]["id"])
    assert run["status"] == "succeeded"
    assert run["response"]["status"] == 201
    assert len(sink.on("/after")) == 1


async def test_sync_repeat_of_a_run_without_respond_gets_the_same_answer(node: Node, sink: Sink) -> None:
    first = await node.client.post("/hooks/plain", json={"id": "S-8"})
    again = await node.client.post("/hooks/plain", json={"id": "S-8"})
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json() and again.json()["status"] == "succeeded"
    assert len(sink.on("/plain")) == 1


async def test_sync_repeat_gets_the_stored_answer(node: Node, sink: Sink) -> None:
    first = await node.client.post("/hooks/validate", json={"id": "S-2"})
    await node.wait_run((await node.runs(flow="validate"))[0]["id"])
    again = await node.client.post("/hooks/validate", json={"id": "S-2"})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert len(sink.on("/check")) == 1


async def test_sync_timeout_falls_back_to_202(node: Node, sink: Sink) -> None:
    sink.rule("/slow", delay=1.5)
    answer = await node.client.post("/hooks/slow", json={"id": "S-3"})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert answer.headers["location"] == f"/api/v1/runs/{run_id}"
    run = await node.wait_run(run_id)
    assert run["status"] == "succeeded" and run["response"] == {"status": 200, "body": {"done": True}, "headers": {}}


async def test_sync_without_respond_answers_with_the_outcome(node: Node) -> None:
    answer = await node.client.post("/hooks/plain", json={"id": "S-4"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded" and body["output"]["echo"] == {"id": "S-4"}
    assert (await node.run(body["run_id"]))["status"] == "succeeded"


async def test_sync_runs_with_an_ordering_key_wait_their_turn(node: Node, sink: Sink) -> None:
    sink.rule("/keyed", delay=0.4)
    answers = await asyncio.gather(
        *(node.client.post("/hooks/keyed", json={"key": "A", "n": n}) for n in range(3)),
        node.client.post("/hooks/keyed", json={"key": "B", "n": 9}),
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert sorted(a.json()["n"] for a in answers) == [0, 1, 2, 9]
    hits = sorted((h for h in sink.on("/keyed") if h.body["key"] == "A"), key=lambda h: h.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(hits)), "runs of one key overlapped"
    b_hit = next(h for h in sink.on("/keyed") if h.body["key"] == "B")
    assert any(h.start < b_hit.end and b_hit.start < h.end for h in hits), "other keys should not wait"


async def test_sync_run_cut_off_by_shutdown_is_released(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/slow", delay=3.0)
    project = write_project(tmp_path / "p", sink.url, {"slow": SLOW.replace("300ms", "10s")})
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    node = await nodes(project, store_url)
    caller = asyncio.create_task(node.client.post("/hooks/slow", json={"id": "S-7"}))
    await until(lambda: sink.on("/slow"))
    [run] = await node.runs(flow="slow")
    assert run["status"] == "running"
    await node.stop(grace=0.3)
    caller.cancel()
    store = open_store(store_url, project)
    await store.open()
    stored = await store.get_run(run["id"])
    await store.close()
    assert stored is not None and (stored.status, stored.lease_owner) == ("queued", None)
    sink.rules["/slow"].delay = 0
    second = await nodes(project, store_url)
    assert (await second.wait_run(run["id"]))["status"] == "succeeded"


async def test_sync_failure_answers_with_the_error(node: Node, sink: Sink) -> None:
    sink.rule("/broken", status=500, body={"error": "down"})
    answer = await node.client.post("/hooks/failing", json={"id": "S-5"})
    assert answer.status_code == 502, answer.text
    assert answer.json()["status"] == "failed" and answer.json()["error"]
    rejected = await node.client.post("/hooks/rejecting", json={"id": "S-6"})
    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == "NOT_ALLOWED"


async def test_a_store_failure_mid_run_answers_503_and_the_run_resumes(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """The run is committed at intake; when its journal write fails, the sync caller gets 503 with
    the run's location and a Retry-After, and the run finishes by itself after its lease, with the
    call repeated under the same idempotency key."""
    node = await nodes(write_project(tmp_path / "p", sink.url, {"plain": NO_RESPOND}), lease=0.6, poll_interval=0.05)
    store = node.service.store
    real = store.write_journal
    failed: list[str] = []

    async def fail_once(run_id: str, *args: object, **kwargs: object) -> None:
        if not failed:
            failed.append(run_id)
            raise StoreError("injected: disk unavailable")
        await real(run_id, *args, **kwargs)  # type: ignore[arg-type]

    store.write_journal = fail_once  # type: ignore[method-assign]
    answer = await node.client.post("/hooks/plain", json={"id": "S-9"})
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["code"] == "store_unavailable" and body["run_id"] == failed[0]
    assert answer.headers["location"] == f"/api/v1/runs/{failed[0]}" and answer.headers["retry-after"]
    assert "injected" not in answer.text
    run = await node.wait_run(failed[0])
    assert run["status"] == "succeeded"
    keys = {hit.headers.get("idempotency-key") for hit in sink.on("/plain")}
    assert len(sink.on("/plain")) == 2 and len(keys) == 1 and None not in keys
