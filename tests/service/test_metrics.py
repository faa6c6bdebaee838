"""/metrics as an operator reads it, parsed by prometheus_client's own text parser: build info,
connector call latency by system, operation and status class, webhook request latency, dead-letter
depth and pending runs per flow, circuit-breaker states, schedule and poll lag; and no `_created`
series next to the counters."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime import __version__
from runtime.store.base import NewRun, RunStatus
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, write_project

ORDERS = """
trigger:
  webhook: {path: /hooks/orders}
steps:
  - id: post
    call: sink.post
    with: {path: orders, body: "{{ input }}"}
"""

BROKEN = """
trigger:
  webhook: {path: /hooks/broken}
on_failure: dead_letter
steps:
  - id: post
    call: sink.post
    with: {path: broken, body: {}}
    retry: {attempts: 1}
"""

GUARDED = """
trigger:
  webhook: {path: /hooks/guarded}
steps:
  - id: post
    call: guarded.post
    with: {path: guarded, body: {}}
"""

NIGHTLY = """
trigger:
  schedule: {cron: "0 0 1 1 *"}
steps:
  - id: done
    set: {ok: true}
"""

FEED = """
trigger:
  poll:
    call: sink.items
    every: 1h
    items: "$.data[*]"
    key: "{{ item.id }}"
steps:
  - id: done
    set: {ok: true}
"""

LIMITS = """\
kind: Policy
name: limits
rules:
  - id: sinkhole-breaker
    match: {system: sinkhole}
    circuit_breaker: {failures: 1, reset_after: 1h}
"""

GUARDED_CONNECTION = """\
kind: Connection
name: guarded
type: http
system: guardhole
config:
  base_url: "{url}"
  circuit_breaker: {{failures: 5, reset_after: 1h}}
operations:
  post: {{method: POST, path: "/{{{{ params.path }}}}", body: "{{{{ params.body }}}}", entity: thing, effect: create}}
"""


@pytest.fixture
async def node(tmp_path: Path, sink: Sink, nodes: StartNode) -> Node:
    sink.rule("/items", body={"data": []})
    flows = {"orders": ORDERS, "broken": BROKEN, "guarded": GUARDED, "nightly": NIGHTLY, "feed": FEED}
    project = write_project(tmp_path / "p", sink.url, flows)
    (project / "governance" / "limits.yaml").write_text(LIMITS)
    (project / "systems" / "guarded.yaml").write_text(GUARDED_CONNECTION.format(url=sink.url))
    return await nodes(project)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"no {name}{labels}: {sorted(n for n, _ in found if n.startswith(name))}"
    return found[key]


async def test_metrics_an_operator_looks_at(node: Node, sink: Sink) -> None:
    for n in range(3):
        answer = await node.client.post("/hooks/orders", json={"id": f"M-{n}"})
        await node.wait_run(answer.json()["run_id"])
    await node.wait_run((await node.client.post("/hooks/guarded", json={})).json()["run_id"])
    await node.client.post("/hooks/orders", content=b"{", headers={"Content-Type": "application/json"})
    await node.client.post("/hooks/nowhere", json={})
    sink.rule("/broken", status=503)
    await node.wait_run((await node.client.post("/hooks/broken", json={})).json()["run_id"])
    store = node.service.store
    for status in ("held", "held", "retrying", "waiting"):
        later = time.time() + 3600  # not due: the workers leave them alone
        await store.create_run(NewRun(flow="orders", input={}, status=status, due_at=later), now=time.time())
    parked: RunStatus = "waiting"
    await store.create_run(
        NewRun(flow="orders", input={}, status=parked, meta={"parked": {"key": "1"}}), now=time.time()
    )
    await node.service.fire_schedule("nightly", dt.datetime.fromtimestamp(time.time() - 30, dt.UTC))

    text = (await node.client.get("/metrics")).text
    found = samples(text)
    assert not [name for name, _ in found if name.endswith("_created")]
    assert value(found, "syncline_build_info", version=__version__, python=_python()) == 1

    call = "syncline_connector_call_duration_seconds_count"
    assert value(found, call, system="sinkhole", operation="sink.post", status_class="2xx") == 3
    assert value(found, call, system="sinkhole", operation="sink.post", status_class="5xx") == 1
    assert value(found, call, system="guardhole", operation="guarded.post", status_class="2xx") == 1
    assert value(found, call, system="sinkhole", operation="sink.items", status_class="2xx") >= 1  # the poll

    hook = "syncline_webhook_request_duration_seconds_count"
    assert value(found, hook, flow="orders", status_class="2xx") == 3
    assert value(found, hook, flow="orders", status_class="4xx") == 1
    assert value(found, hook, flow="", status_class="4xx") == 1

    assert value(found, "syncline_dead_letter_depth", flow="broken") == 1
    assert value(found, "syncline_dead_letter_depth", flow="orders") == 0
    pending = {s: value(found, "syncline_runs_pending", flow="orders", status=s) for s in ("held", "retrying")}
    assert pending == {"held": 2, "retrying": 1}
    assert value(found, "syncline_runs_pending", flow="orders", status="waiting") == 1
    assert value(found, "syncline_runs_pending", flow="orders", status="parked") == 1
    assert value(found, "syncline_runs_pending", flow="broken", status="held") == 0

    breaker = "syncline_circuit_breaker_state"
    assert value(found, breaker, system="sinkhole", scope="policy", state="open") == 1
    assert value(found, breaker, system="sinkhole", scope="policy", state="closed") == 0
    assert value(found, breaker, system="guardhole", scope="guarded", state="closed") == 1

    assert value(found, "syncline_schedule_lag_seconds", flow="nightly") >= 30
    assert 0 <= value(found, "syncline_poll_lag_seconds", flow="feed") < 3600


def _python() -> str:
    import platform

    return platform.python_version()
