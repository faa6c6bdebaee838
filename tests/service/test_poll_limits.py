"""Poll triggers call their source through the same path as every other call (issue 8, item 7): the
system's circuit breaker and rate limit from Policy rules apply to the poll's call too."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.clock import FakeClock
from runtime.connector_api import ConnectorError
from runtime.service.sources import SourceHost
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.poll import PollSource
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, write_project

POLL = """
trigger:
  poll:
    call: sink.items
    every: 1h
    items: "$.data[*]"
    key: "{{ item.id }}"
steps:
  - id: push
    call: sink.post
    with: {path: got, body: "{{ input }}"}
"""


class Poller:
    """The flow's poll source with the context the node gives it, polled by hand."""

    def __init__(self, node: Node) -> None:
        self.host = SourceHost(node.service, node.service.plan.flows["feed"], default_trigger_registry().get("poll"))
        assert isinstance(self.host.source, PollSource)
        self.source = self.host.source

    async def poll_once(self) -> int:
        return await self.source.poll_once(self.host.context)


async def start(tmp_path: Path, sink: Sink, nodes: StartNode, rule: str, clock: FakeClock) -> tuple[Node, Poller]:
    root = write_project(tmp_path / "p", sink.url, {"feed": POLL})
    (root / "governance" / "limits.yaml").write_text(
        f"kind: Policy\nname: limits\nrules:\n  - id: sinkhole-limits\n    match: {{system: sinkhole}}\n{rule}"
    )
    node = await nodes(root, triggers=False, clock=clock)  # the test polls by hand
    return node, Poller(node)


async def test_a_poll_respects_the_systems_circuit_breaker(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    """Two failed polls open the breaker; the third poll is refused without reaching the source."""
    _node, poller = await start(
        tmp_path, sink, nodes, "    circuit_breaker: {failures: 2, reset_after: 1h}\n", FakeClock()
    )
    sink.rule("/items", fail_next=10, fail_status=503)
    for _ in range(2):
        with pytest.raises(ConnectorError):
            await poller.poll_once()
    assert len(sink.on("/items")) == 2
    with pytest.raises(ConnectorError) as refused:
        await poller.poll_once()
    assert refused.value.reason == "circuit_open"
    assert len(sink.on("/items")) == 2


async def test_a_poll_waits_for_the_systems_rate_limit(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    """One call per 100 s: the second poll waits (on the clock) for its token before it calls."""
    clock = FakeClock()
    _node, poller = await start(tmp_path, sink, nodes, "    rate_limit: {per_second: 0.01, burst: 1}\n", clock)
    sink.rule("/items", body={"data": []})
    await poller.poll_once()
    assert clock.slept == []
    await poller.poll_once()
    assert clock.slept == [pytest.approx(100.0)]
    assert len(sink.on("/items")) == 2
