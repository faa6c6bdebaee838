"""Poll triggers: the cursor is stored and sent as the call's parameter, items whose key was seen
are skipped, a failing source is polled less often, and a restarted node keeps the cursor."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from runtime.store.base import RunFilter
from tests.service.conftest import StartNode
from tests.service.harness import Hit, Node, Sink, until, write_project

POLL = """
trigger:
  poll:
    call: sink.items
    every: {every}
    backoff: {backoff}
    cursor:
      param: since
      value: "{{{{ items | map(attribute='updated_at') | max }}}}"
      initial: "2026-01-01T00:00:00Z"
    items: "$.data[*]"
    key: "{{{{ item.id }}}}@{{{{ item.updated_at }}}}"
steps:
  - id: push
    call: sink.post
    with: {{path: got, body: "{{{{ input }}}}"}}
"""

TRIGGER = "poll:feed"


class Source:
    """The polled system: items with `updated_at`; returns those at or after `since` (inclusive, as
    many APIs do, so the last item comes back and must be skipped by its key)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, item_id: str, updated_at: str) -> None:
        self.items.append({"id": item_id, "updated_at": updated_at})

    def __call__(self, hit: Hit) -> tuple[int, Any]:
        since = hit.query.get("since", "")
        return 200, {"data": [i for i in self.items if i["updated_at"] >= since]}


def project(tmp_path: Path, sink: Sink, every: str = "200ms", backoff: str = "1s") -> Path:
    return write_project(tmp_path / "p", sink.url, {"feed": POLL.format(every=every, backoff=backoff)})


async def delivered(node: Node) -> list[str]:
    runs = await node.service.store.list_runs(RunFilter(flow="feed", limit=100))
    return sorted(r.input["id"] for r in runs)


async def test_cursor_is_stored_sent_and_seen_items_skipped(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    source = Source()
    source.add("I-1", "2026-03-01T10:00:00Z")
    source.add("I-2", "2026-03-01T11:00:00Z")
    sink.rule("/items", handler=source)
    node = await nodes(project(tmp_path, sink))
    await until(lambda: len(sink.on("/items")) >= 3)
    assert await delivered(node) == ["I-1", "I-2"]
    assert sink.on("/items")[0].query["since"] == "2026-01-01T00:00:00Z"
    assert sink.on("/items")[-1].query["since"] == "2026-03-01T11:00:00Z"
    assert await node.service.store.get_cursor(TRIGGER) == "2026-03-01T11:00:00Z"

    source.add("I-3", "2026-03-02T09:00:00Z")
    source.add("I-2", "2026-03-02T09:30:00Z")  # changed again: a new key, a new run
    # a poll is answered, accepted, then the next one is sent: a request with the new cursor means the
    # poll that returned I-3 and the new I-2 has been accepted
    await until(lambda: any(h.query["since"] == "2026-03-02T09:30:00Z" for h in sink.on("/items")))
    assert await delivered(node) == ["I-1", "I-2", "I-2", "I-3"]
    await until(lambda: len(sink.on("/got")) == 4)
    assert sorted((h.body["id"], h.body["updated_at"]) for h in sink.on("/got")) == [
        ("I-1", "2026-03-01T10:00:00Z"),
        ("I-2", "2026-03-01T11:00:00Z"),
        ("I-2", "2026-03-02T09:30:00Z"),
        ("I-3", "2026-03-02T09:00:00Z"),
    ]


async def test_failing_source_backs_off_then_recovers(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    source = Source()
    source.add("I-1", "2026-03-01T10:00:00Z")
    sink.rule("/items", handler=source, fail_next=3, fail_status=500)
    node = await nodes(project(tmp_path, sink, every="100ms", backoff="300ms"))
    await until(lambda: len(sink.on("/items")) >= 3)
    failures = sink.on("/items")[:3]
    assert await node.service.store.get_cursor(TRIGGER) is None  # a failed poll changes nothing
    # every 100 ms without backoff; with it the waits after the 1st and 2nd failure are 300 and 600 ms
    # (a sleep never ends early; the sink stamps arrivals in its own thread, so allow it 50 ms)
    gaps = [b.start - a.start for a, b in itertools.pairwise(failures)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.55, gaps
    await until(lambda: len(sink.on("/got")) == 1, timeout=5)
    assert await delivered(node) == ["I-1"]
    metrics = (await node.client.get("/metrics")).text
    assert 'syncline_connector_calls_total{operation="sink.items",outcome="error",system="sinkhole"}' in metrics


async def test_cursor_survives_a_restart(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    source = Source()
    source.add("I-1", "2026-03-01T10:00:00Z")
    sink.rule("/items", handler=source)
    folder = project(tmp_path, sink)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    first = await nodes(folder, store_url)
    await until(lambda: len(sink.on("/got")) == 1)
    await first.stop()
    before = len(sink.on("/items"))

    second = await nodes(folder, store_url)
    await until(lambda: len(sink.on("/items")) >= before + 2)
    assert sink.on("/items")[before].query["since"] == "2026-03-01T10:00:00Z"
    # its second request means its first poll (which saw I-1 again) has been accepted: no new run
    assert await delivered(second) == ["I-1"]
    assert len(sink.on("/got")) == 1
