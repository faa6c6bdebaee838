"""Event triggers and `wait` steps: an `emit` in one flow starts the flows that listen for it, and
resumes runs waiting for it."""

from __future__ import annotations

from pathlib import Path

from runtime.store.base import RunFilter
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until, write_project

SUBMIT = """
trigger:
  webhook: {path: /hooks/submit}
steps:
  - id: post
    call: sink.post
    with: {path: erp, body: "{{ input }}"}
  - id: announce
    emit:
      event: order.submitted
      data: {order_ref: "{{ input.id }}", erp_call: "{{ steps.post.output.n }}"}
"""

ON_SUBMITTED = """
trigger:
  event: {name: order.submitted}
steps:
  - id: notify
    call: sink.post
    with: {path: notified, body: "{{ input }}"}
"""

ONLY_BIG = """
trigger:
  event: {name: order.submitted, match: "{{ 'BIG' in event.order_ref }}"}
steps:
  - id: notify
    call: sink.post
    with: {path: big, body: "{{ input }}"}
"""

WAITER = """
trigger:
  webhook: {path: /hooks/ship}
steps:
  - id: ack
    wait: {event: shipment.ack, match: "{{ event.order_ref == input.id }}", timeout: 20s}
  - id: after
    call: sink.post
    with: {path: shipped, body: "{{ steps.ack.output }}"}
"""

ACK = """
trigger:
  webhook: {path: /hooks/ack}
steps:
  - id: ack
    emit: {event: shipment.ack, data: {order_ref: "{{ input.order_ref }}", carrier: "{{ input.carrier }}"}}
"""

TIMEOUT = """
trigger:
  webhook: {path: /hooks/patient}
steps:
  - id: ack
    wait: {event: never.happens, timeout: 500ms, on_timeout: continue}
  - id: after
    call: sink.post
    with: {path: gave-up, body: {}}
"""


async def start(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    flows = {
        "submit": SUBMIT,
        "on-submitted": ON_SUBMITTED,
        "only-big": ONLY_BIG,
        "waiter": WAITER,
        "ack": ACK,
        "patient": TIMEOUT,
    }
    return await nodes(write_project(tmp_path / "p", sink.url, flows))


async def test_emitted_event_starts_the_listening_flow(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await start(tmp_path, sink, nodes)
    answer = await node.client.post("/hooks/submit", json={"id": "E-1"})
    source = await node.wait_run(answer.json()["run_id"])
    assert source["status"] == "succeeded"
    await until(lambda: sink.on("/notified"))
    assert [h.body for h in sink.on("/notified")] == [{"order_ref": "E-1", "erp_call": 1}]
    started = await node.service.store.list_runs(RunFilter(flow="on-submitted"))
    assert [(r.trigger, r.parent_run_id, r.input) for r in started] == [
        ("event", source["id"], {"order_ref": "E-1", "erp_call": 1})
    ]
    assert sink.on("/big") == []  # its match is false
    await node.client.post("/hooks/submit", json={"id": "BIG-2"})
    await until(lambda: sink.on("/big"))
    await until(lambda: len(sink.on("/notified")) == 2)


async def test_wait_step_resumes_on_the_matching_event(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await start(tmp_path, sink, nodes)
    run_id = (await node.client.post("/hooks/ship", json={"id": "W-1"})).json()["run_id"]
    waiting = await node.wait_run(run_id, {"waiting"})
    assert waiting["due_at"] is not None
    await node.client.post("/hooks/ack", json={"order_ref": "OTHER", "carrier": "x"})
    other = await node.wait_run((await node.runs(flow="ack"))[0]["id"])
    assert other["status"] == "succeeded"
    await node.wait_run(run_id, {"waiting"})
    assert sink.on("/shipped") == []
    await node.client.post("/hooks/ack", json={"order_ref": "W-1", "carrier": "dhl"})
    done = await node.wait_run(run_id)
    assert done["status"] == "succeeded"
    assert [h.body for h in sink.on("/shipped")] == [{"order_ref": "W-1", "carrier": "dhl"}]


async def test_wait_times_out(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await start(tmp_path, sink, nodes)
    run_id = (await node.client.post("/hooks/patient", json={})).json()["run_id"]
    done = await node.wait_run(run_id, timeout=5)
    assert done["status"] == "succeeded" and len(sink.on("/gave-up")) == 1


async def test_an_event_emitted_while_the_waiting_run_was_busy_is_not_missed(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """The dispatcher gives events only to runs that are `waiting`; one that was running then (woken
    by another event, or just suspending) must still get it. Here the dispatcher is stopped, so the
    event reaches the store and nobody delivers it: the run is woken by the check the service makes
    after a run suspends, and the wait step finds the event in the store."""
    node = await start(tmp_path, sink, nodes)
    run_id = (await node.client.post("/hooks/ship", json={"id": "W-2"})).json()["run_id"]
    await node.wait_run(run_id, {"waiting"})
    await node.service.events.stop()  # no delivery from here on
    await node.client.post("/hooks/ack", json={"order_ref": "W-2", "carrier": "ups"})
    await until(lambda: _emitted(node))
    waiting = await node.service.store.get_run(run_id)
    assert waiting is not None and waiting.status == "waiting" and not waiting.meta.get("events")

    await node.service.events.wake_if_missed(waiting)
    done = await node.wait_run(run_id)
    assert done["status"] == "succeeded"
    assert [h.body for h in sink.on("/shipped")] == [{"order_ref": "W-2", "carrier": "ups"}]


async def _emitted(node: Node) -> bool:
    return bool(await node.service.store.events_after(0))
