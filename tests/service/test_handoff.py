"""Intake hands new runs straight to the node's workers: an async webhook delivery (or a source's event)
that becomes a run while the node has room is committed already leased to it and starts at once,
without a claim; beyond the limit, and for runs with an ordering key, runs wait in the queue."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from runtime.service.service import Service
from tests.service.conftest import StartNode
from tests.service.harness import Sink, until, write_project

PLAIN = """
trigger:
  webhook: {path: /hooks/plain, idempotency_key: "{{ input.id }}"}
steps:
  - id: work
    call: sink.post
    with: {path: work, body: "{{ input }}"}
"""

ORDERED = """
trigger:
  webhook: {path: /hooks/ordered, ordering_key: "{{ input.key }}"}
steps:
  - id: work
    call: sink.post
    with: {path: ordered, body: "{{ input }}"}
"""


def count_claims(service: Service) -> list[str]:
    """The ids of the runs the node's claims return from now on."""
    claimed: list[str] = []
    original = service.store.claim

    async def claim(*args: Any, **kwargs: Any) -> Any:
        runs = await original(*args, **kwargs)
        claimed.extend(run.id for run in runs)
        return runs

    service.store.claim = claim  # type: ignore[method-assign]
    return claimed


async def test_async_delivery_starts_without_a_claim(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"plain": PLAIN}), workers=4)
    claimed = count_claims(node.service)
    answer = await node.client.post("/hooks/plain", json={"id": "o-1"})
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    run = await node.wait_run(run_id)
    assert run["status"] == "succeeded"
    assert run_id not in claimed, "the run went through the queue instead of being handed over"
    assert len(sink.on("/work")) == 1
    assert node.service.workers.reserved == 0


async def test_beyond_the_limit_runs_wait_in_the_queue(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/work", delay=0.5)
    node = await nodes(write_project(tmp_path / "p", sink.url, {"plain": PLAIN}), workers=2)
    claimed = count_claims(node.service)
    ids = []
    for n in range(6):
        answer = await node.client.post("/hooks/plain", json={"id": f"o-{n}"})
        assert answer.status_code == 202
        ids.append(answer.json()["run_id"])
    for run_id in ids:
        assert (await node.wait_run(run_id, timeout=20))["status"] == "succeeded"
    hits = sink.on("/work")
    assert sorted(h.body["id"] for h in hits) == [f"o-{n}" for n in range(6)]
    # the most calls under way at one moment (the moment one of them began)
    most = max(sum(1 for other in hits if other.start <= hit.start < other.end) for hit in hits)
    assert most <= 2, f"{most} runs in flight with a limit of 2"
    assert claimed, "no run waited in the queue although the limit was reached"
    assert set(claimed) < set(ids), "no run was handed over"
    assert node.service.workers.reserved == 0


async def test_a_repeated_delivery_gives_its_slot_back(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"plain": PLAIN}), workers=1)
    first = await node.client.post("/hooks/plain", json={"id": "same"})
    repeat = await node.client.post("/hooks/plain", json={"id": "same"})
    assert first.status_code == 202
    assert repeat.status_code == 200
    assert repeat.json()["run_id"] == first.json()["run_id"]
    await node.wait_run(first.json()["run_id"])
    assert node.service.workers.reserved == 0
    claimed = count_claims(node.service)
    later = await node.client.post("/hooks/plain", json={"id": "later"})
    await node.wait_run(later.json()["run_id"])
    assert later.json()["run_id"] not in claimed, "the repeat kept the only slot: the next run was queued"
    assert len(sink.on("/work")) == 2


async def test_runs_with_an_ordering_key_go_through_the_queue(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ordered": ORDERED}), workers=4)
    claimed = count_claims(node.service)
    ids = []
    for key, n in itertools.product("AB", range(2)):
        answer = await node.client.post("/hooks/ordered", json={"key": key, "n": n})
        ids.append(answer.json()["run_id"])
    for run_id in ids:
        assert (await node.wait_run(run_id))["status"] == "succeeded"
    await until(lambda: len(claimed) >= len(ids))
    assert sorted(claimed) == sorted(ids)
