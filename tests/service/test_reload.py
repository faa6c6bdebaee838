"""Hot reload through the admin API: a valid new project is swapped in, a broken one is refused with
its diagnostics while the old one keeps serving, and runs accepted before the swap finish on the
version they were accepted on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.service.conftest import StartNode
from tests.service.harness import OPERATOR, VIEWER, Sink, write_flow, write_project

V1 = """
trigger:
  webhook: {path: /hooks/work}
steps:
  - id: slow
    call: sink.post
    with: {path: slow, body: "{{ input }}"}
  - id: finish
    call: sink.post
    with: {path: v1, body: "{{ input }}"}
"""

V2 = V1.replace("path: v1", "path: v2")

EXTRA = """
trigger:
  webhook: {path: /hooks/extra}
steps:
  - id: post
    call: sink.post
    with: {path: extra, body: "{{ input }}"}
"""

BROKEN = """
trigger:
  webhook: {path: /hooks/broken}
steps:
  - id: post
    call: nowhere.post
"""


async def test_reload_swaps_in_a_valid_project(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    project = write_project(tmp_path / "p", sink.url, {"work": V1})
    node = await nodes(project)
    assert (await node.client.post("/hooks/extra", json={})).status_code == 404
    write_flow(project, "extra", EXTRA)
    answer = await node.admin("POST", "/api/v1/reload", OPERATOR)
    assert answer.status_code == 200 and answer.json()["reloaded"] is True
    flows = (await node.admin("GET", "/api/v1/flows", VIEWER)).json()
    assert {f["name"] for f in flows["flows"]} == {"work", "extra"}
    assert flows["project_version"] == answer.json()["project_version"]
    accepted = await node.client.post("/hooks/extra", json={"n": 1})
    assert accepted.status_code == 202
    assert (await node.wait_run(accepted.json()["run_id"]))["status"] == "succeeded"


async def test_broken_project_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    project = write_project(tmp_path / "p", sink.url, {"work": V1})
    node = await nodes(project)
    before = (await node.admin("GET", "/api/v1/flows", VIEWER)).json()
    write_flow(project, "broken", BROKEN)
    answer = await node.admin("POST", "/api/v1/reload", OPERATOR)
    assert answer.status_code == 422
    body = answer.json()
    assert body["reloaded"] is False
    assert any(
        "nowhere" in d["message"] and str(d["path"]).endswith("broken.yaml") and d["line"] > 0
        for d in body["diagnostics"]
    ), body
    assert (await node.admin("GET", "/api/v1/flows", VIEWER)).json() == before
    assert (await node.client.post("/hooks/broken", json={})).status_code == 404
    served = await node.client.post("/hooks/work", json={"n": 1})
    assert served.status_code == 202
    assert (await node.wait_run(served.json()["run_id"]))["status"] == "succeeded"
    text = (await node.client.get("/metrics")).text
    assert 'syncline_reloads_total{outcome="rejected"} 1.0' in text


async def test_runs_accepted_before_a_reload_finish_on_their_version(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    sink.rule("/slow", delay=0.8)
    project = write_project(tmp_path / "p", sink.url, {"work": V1})
    node = await nodes(project, workers=1)
    in_flight = (await node.client.post("/hooks/work", json={"n": 1})).json()["run_id"]
    queued = (await node.client.post("/hooks/work", json={"n": 2})).json()["run_id"]
    await node.wait_run(in_flight, {"running"})
    write_flow(project, "work", V2)
    assert (await node.admin("POST", "/api/v1/reload", OPERATOR)).status_code == 200
    after = (await node.client.post("/hooks/work", json={"n": 3})).json()["run_id"]
    runs = [await node.wait_run(run_id, timeout=10) for run_id in (in_flight, queued, after)]
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    assert runs[0]["flow_version"] == runs[1]["flow_version"] != runs[2]["flow_version"]
    assert sorted(h.body["n"] for h in sink.on("/v1")) == [1, 2]
    assert [h.body["n"] for h in sink.on("/v2")] == [3]


async def test_concurrent_reloads_are_serialised(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    project = write_project(tmp_path / "p", sink.url, {"work": V1})
    node = await nodes(project)
    write_flow(project, "extra", EXTRA)
    answers = await asyncio.gather(*(node.admin("POST", "/api/v1/reload", OPERATOR) for _ in range(4)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["project_version"] for a in answers}) == 1
    assert (await node.client.post("/hooks/extra", json={})).status_code == 202
