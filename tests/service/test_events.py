"""Event triggers and `wait` steps: an `emit` in one flow starts the flows that listen for it, and
resumes runs waiting for it."""

from __future__ import annotations

from pathlib import Path

from runtime.store.base import RunFilter, RunRecord
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until, write_flow, write_project

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


ALSO_SUBMITTED = """
trigger:
  event: {name: order.submitted}
steps:
  - id: notify
    call: sink.post
    with: {path: also, body: "{{ input }}"}
"""


async def _listener_runs(node: Node, flow: str) -> list[RunRecord]:
    return await node.service.store.list_runs(RunFilter(flow=flow))


async def _submit(node: Node, ref: str) -> str:
    answer = await node.client.post("/hooks/submit", json={"id": ref})
    run_id: str = answer.json()["run_id"]
    assert (await node.wait_run(run_id))["status"] == "succeeded"
    return run_id


async def test_two_flows_on_one_event_each_get_one_run_and_a_restart_starts_none_again(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    project = write_project(tmp_path / "p", sink.url, {"submit": SUBMIT, "a": ON_SUBMITTED, "b": ALSO_SUBMITTED})
    node = await nodes(project)
    first = await _submit(node, "R-1")
    await until(lambda: sink.on("/notified") and sink.on("/also"))
    for flow in ("a", "b"):
        runs = await _listener_runs(node, flow)
        assert [(r.trigger, r.parent_run_id, r.input["order_ref"]) for r in runs] == [("event", first, "R-1")]
    await node.stop()

    again = await nodes(project)  # a new service on the same SQLite store
    second = await _submit(again, "R-2")
    await until(lambda: len(sink.on("/notified")) == 2 and len(sink.on("/also")) == 2)
    for flow in ("a", "b"):  # the first event was not dispatched again: the second's runs came after it
        runs = sorted(await _listener_runs(again, flow), key=lambda r: r.seq)
        assert [(r.parent_run_id, r.input["order_ref"]) for r in runs] == [(first, "R-1"), (second, "R-2")]
    assert [h.body["order_ref"] for h in sink.on("/notified")] == ["R-1", "R-2"]


async def test_an_event_emitted_while_the_sources_are_stopped_is_dispatched_after_a_reload(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """...and a flow deployed by that reload does not replay the events emitted before it."""
    project = write_project(tmp_path / "p", sink.url, {"submit": SUBMIT, "a": ON_SUBMITTED})
    node = await nodes(project)
    await until(lambda: _cursor(node, "event:a"))  # the listener's source has started
    await node.service.stop_sources()
    while_stopped = await _submit(node, "S-1")
    assert await _listener_runs(node, "a") == []
    write_flow(project, "b", ALSO_SUBMITTED)
    assert await node.service.reload() == []
    await until(lambda: sink.on("/notified"))
    runs = await _listener_runs(node, "a")
    assert [(r.parent_run_id, r.input["order_ref"]) for r in runs] == [(while_stopped, "S-1")]

    after = await _submit(node, "S-2")
    await until(lambda: len(sink.on("/notified")) == 2 and sink.on("/also"))
    runs = await _listener_runs(node, "b")  # new in the reload: only the event emitted after it
    assert [(r.parent_run_id, r.input["order_ref"]) for r in runs] == [(after, "S-2")]


async def test_an_event_emitted_by_a_run_taken_at_start_up_reaches_a_flow_new_in_that_start(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """A run queued before the node started emits as soon as the workers take it, before the new
    flow's source may have read the log: the source begins where the node stood before its workers
    started, so the event is still its."""
    project = write_project(tmp_path / "p", sink.url, {"submit": SUBMIT})
    first = await nodes(project)
    await _submit(first, "H-0")  # history: emitted before the flow is deployed
    await until(lambda: _cursor(first, "events:dispatcher"))
    await first.stop()
    idle = await nodes(project, workers=0)  # takes the webhook, runs nothing
    queued = (await idle.client.post("/hooks/submit", json={"id": "Q-1"})).json()["run_id"]
    await idle.stop()
    write_flow(project, "a", ON_SUBMITTED)
    node = await nodes(project)
    assert (await node.wait_run(queued))["status"] == "succeeded"
    await until(lambda: sink.on("/notified"))
    runs = await _listener_runs(node, "a")
    assert [(r.parent_run_id, r.input["order_ref"]) for r in runs] == [(queued, "Q-1")]


async def test_an_upgrade_from_the_core_dispatcher_begins_where_it_had_read_to(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    """The core's event dispatcher used to start event-triggered flows and kept one cursor,
    `events:dispatcher`: a flow with no cursor of its own begins there, so the events it had not
    read yet are dispatched and the ones it had are not again."""
    project = write_project(tmp_path / "p", sink.url, {"submit": SUBMIT})
    old = await nodes(project)
    await _submit(old, "U-1")
    await old.service.events.stop()
    dispatched = (await old.service.store.events_after(0))[-1].id
    await old.service.store.accept_poll("events:dispatcher", [], dispatched, now=old.service.clock.time())
    pending = await _submit(old, "U-2")  # the old dispatcher stopped before reading this one
    await old.stop()
    write_flow(project, "a", ON_SUBMITTED)
    node = await nodes(project)
    await until(lambda: sink.on("/notified"))
    runs = await _listener_runs(node, "a")
    assert [(r.parent_run_id, r.input["order_ref"]) for r in runs] == [(pending, "U-2")]


async def _cursor(node: Node, trigger_id: str) -> bool:
    return await node.service.store.get_cursor(trigger_id) is not None
