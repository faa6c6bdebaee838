"""Dead letters and replay through the admin API: a permanently failing run is dead-lettered with its
payload and error; replay (whole, from a step, with an edited payload, dry run) repeats only what did
not complete, and the dead letter records the replay."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runtime.store.base import NewRun, RunStatus
from tests.service.conftest import StartNode
from tests.service.harness import OPERATOR, VIEWER, Node, Sink, write_project

DELIVER = """
trigger:
  webhook: {path: /hooks/deliver}
on_failure: dead_letter
steps:
  - id: reserve
    call: sink.post
    with: {path: reserve, body: "{{ input }}"}
  - id: deliver
    call: sink.post
    with: {path: target, body: {order: "{{ input.id }}", reservation: "{{ steps.reserve.output.n }}"}}
  - id: done
    set: {delivered: true}
"""


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    return await nodes(write_project(tmp_path / "p", sink.url, {"deliver": DELIVER}))


async def dead_run(node: Node, sink: Sink, order_id: str = "D-1") -> dict[str, Any]:
    sink.rule("/target", status=422, body={"error": "unknown article"})
    answer = await node.client.post("/hooks/deliver", json={"id": order_id})
    run = await node.wait_run(answer.json()["run_id"])
    assert run["status"] == "dead_lettered", run
    del sink.rules["/target"]  # the target is fixed
    return run


async def replay(node: Node, run_id: str, **options: object) -> dict[str, Any]:
    answer = await node.admin("POST", f"/api/v1/runs/{run_id}/replay", OPERATOR, json=options)
    assert answer.status_code in (200, 202), answer.text
    body: dict[str, Any] = answer.json()
    if answer.status_code == 202:
        assert answer.headers["location"] == f"/api/v1/runs/{body['run_id']}"
    return body


async def test_failed_run_is_listed_as_dead_letter_with_its_error(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    letters = (await node.admin("GET", "/api/v1/dead-letters", VIEWER)).json()["dead_letters"]
    assert [d["run_id"] for d in letters] == [run["id"]]
    assert letters[0]["flow"] == "deliver" and letters[0]["error"]["status"] == 422
    assert letters[0]["replayed_at"] is None
    assert run["input"] == {"id": "D-1"}
    assert [s["step"] for s in run["steps"]] == ["reserve", "deliver"]
    assert run["steps"][1]["status"] == "failed" and run["steps"][1]["error"]["status"] == 422


async def test_replay_repeats_only_what_did_not_complete(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    started = await replay(node, str(run["id"]))
    assert started["replay_of"] == run["id"]
    done = await node.wait_run(str(started["run_id"]))
    assert done["status"] == "succeeded" and done["replay_of"] == run["id"]
    assert len(sink.on("/reserve")) == 1  # done in the original, not repeated
    targets = sink.on("/target")
    assert len(targets) == 2
    assert targets[1].body == {"order": "D-1", "reservation": 1}
    assert targets[0].headers["idempotency-key"] == targets[1].headers["idempotency-key"]
    assert (await node.admin("GET", "/api/v1/dead-letters", VIEWER)).json()["dead_letters"] == []
    letters = (await node.admin("GET", "/api/v1/dead-letters?include_replayed=true", VIEWER)).json()["dead_letters"]
    assert letters[0]["replay_run_id"] == started["run_id"] and letters[0]["replayed_at"] is not None


async def test_replay_from_a_step_runs_it_again(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    started = await replay(node, str(run["id"]), from_step="reserve")
    done = await node.wait_run(str(started["run_id"]))
    assert done["status"] == "succeeded"
    assert len(sink.on("/reserve")) == 2
    assert sink.on("/target")[-1].body == {"order": "D-1", "reservation": 2}


async def test_replay_with_an_edited_payload(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    started = await replay(node, str(run["id"]), from_step="reserve", input={"id": "D-1-fixed"})
    done = await node.wait_run(str(started["run_id"]))
    assert done["status"] == "succeeded" and done["input"] == {"id": "D-1-fixed"}
    assert sink.on("/reserve")[-1].body == {"id": "D-1-fixed"}
    assert sink.on("/target")[-1].body["order"] == "D-1-fixed"


async def test_dry_run_lists_side_effects_without_making_them(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    before = len(sink.hits)
    plan = await replay(node, str(run["id"]), dry_run=True)
    assert plan["dry_run"] is True
    assert plan["skipped"] == ["reserve"]
    assert [(e["step"], e["operation"]) for e in plan["side_effects"]] == [("deliver", "sink.post")]
    assert len(sink.hits) == before
    assert len(await node.runs(flow="deliver")) == 1
    letters = (await node.admin("GET", "/api/v1/dead-letters", VIEWER)).json()["dead_letters"]
    assert letters[0]["replayed_at"] is None


async def test_dry_run_from_a_step_lists_it_as_run_again_not_skipped(node: Node, sink: Sink) -> None:
    run = await dead_run(node, sink)
    plan = await replay(node, str(run["id"]), dry_run=True, from_step="reserve")
    assert (plan["skipped"], plan["rerun"]) == ([], ["reserve", "deliver", "done"])
    assert [c["operation"] for c in plan["side_effects"]] == ["sink.post", "sink.post"]
    assert plan["completes"] is True and plan["problem"] is None
    letters = (await node.admin("GET", "/api/v1/dead-letters", VIEWER)).json()["dead_letters"]
    assert letters[0]["reason"].startswith('HTTP 422 from sink.post: {"error":"unknown article"}')


async def test_replay_refusals(node: Node, sink: Sink) -> None:
    missing = await node.admin("POST", "/api/v1/runs/NOPE/replay", OPERATOR, json={})
    assert missing.status_code == 404
    run = await dead_run(node, sink)
    bad_step = await node.admin("POST", f"/api/v1/runs/{run['id']}/replay", OPERATOR, json={"from_step": "nope"})
    assert bad_step.status_code in (404, 422) and "nope" in bad_step.json()["detail"]
    bad_body = await node.admin("POST", f"/api/v1/runs/{run['id']}/replay", OPERATOR, content=b"[1]")
    assert bad_body.status_code == 400
    sink.rule("/reserve", delay=1.0)
    running = (await node.client.post("/hooks/deliver", json={"id": "D-2"})).json()["run_id"]
    await node.wait_run(running, {"running"})
    refused = await node.admin("POST", f"/api/v1/runs/{running}/replay", OPERATOR, json={})
    assert refused.status_code == 409


@pytest.mark.parametrize("status", ["retrying", "waiting", "held", "queued"])
async def test_a_run_that_has_not_ended_is_not_replayable(node: Node, status: RunStatus) -> None:
    """Retrying, waiting and held runs may still act: a replay beside them would act twice."""
    created = await node.service.store.create_run(
        NewRun(flow="deliver", input={"id": "N-1"}, status=status, due_at=time.time() + 3600), now=time.time()
    )
    answer = await node.admin("POST", f"/api/v1/runs/{created.run.id}/replay", OPERATOR, json={})
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "run_not_ended" and status in answer.json()["detail"]
    assert len(await node.runs(flow="deliver")) == 1  # no replay run was created
