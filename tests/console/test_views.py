"""The console's pure helpers: the keyset start for time filters, the overview's counts, the
timeline's axis, lineage order, reconciliation results and the SVG pictures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runtime.console.svg import sparkline
from runtime.console.views import (
    DAY,
    HOUR,
    lineage,
    overview_counts,
    reconciliations,
    seq_before,
    timeline,
)
from runtime.store.base import NewRun, RunFilter
from runtime.store.memory import MemoryStore


@pytest.fixture
async def store() -> MemoryStore:
    opened = MemoryStore()
    await opened.open()
    for n in range(300):
        # accepted one second apart, a few of them stamped up to 200 s off (another node's clock)
        skew = -200.0 if n % 37 == 0 else 0.0
        await opened.create_run(NewRun(flow="f", input={"n": n}), now=1000.0 + n + skew)
    return opened


@pytest.mark.parametrize("until", [900.0, 1000.0, 1100.5, 1150.0, 1299.0, 1400.0])
async def test_the_keyset_start_for_until_lists_the_same_runs(store: MemoryStore, until: float) -> None:
    everything = await store.list_runs(RunFilter(until=until, limit=1000))
    bound = await seq_before(store, until)
    bounded = await store.list_runs(RunFilter(until=until, limit=1000, before_seq=bound))
    assert [r.id for r in bounded] == [r.id for r in everything]
    if until < 1299 - 300:
        assert bound is not None and bound < 300  # it skips the newer runs


async def test_no_keyset_start_when_until_is_recent(store: MemoryStore) -> None:
    assert await seq_before(store, 1290.0) is None
    empty = MemoryStore()
    await empty.open()
    assert await seq_before(empty, 5.0) is None


async def test_overview_counts_by_column_hour_and_day() -> None:
    store = MemoryStore()
    await store.open()
    now = 10 * DAY
    for flow, status, age in [
        ("a", "succeeded", 10),
        ("a", "dead_lettered", 2 * HOUR + 60),
        ("a", "held", 30),
        ("b", "failed", 5),
        ("a", "succeeded", DAY + 1),  # older than a day: not counted
    ]:
        await store.create_run(NewRun(flow=flow, input={}, status=status), now=now - age)  # type: ignore[arg-type]
    counts = {c.flow: c for c in await overview_counts(store, ["a", "b", "c"], now)}
    assert counts["a"].hour == {"succeeded": 1, "failed": 0, "dead-lettered": 0, "held": 1, "waiting": 0}
    assert counts["a"].day["dead-lettered"] == 1 and counts["a"].per_hour[-1] == 2 and counts["a"].per_hour[-3] == 1
    assert counts["a"].failed_per_hour[-3] == 1 and counts["b"].hour["failed"] == 1
    assert counts["c"].day == dict.fromkeys(counts["c"].day, 0)


def test_timeline_places_steps_on_one_axis() -> None:
    run = {
        "started_at": 100.0,
        "steps": [
            {"step": "a", "kind": "set", "status": "succeeded", "started_at": 100.0, "finished_at": 101.0},
            {
                "step": "each[1].b",
                "kind": "call",
                "status": "failed",
                "attempts": 3,
                "started_at": 101.0,
                "finished_at": 104.0,
                "duration_ms": 3000.0,
            },
            {
                "step": "b~compensate",
                "kind": "call",
                "status": "compensated",
                "started_at": 104.0,
                "finished_at": 104.0,
            },
        ],
    }
    steps = timeline(run)
    assert [(s.offset_pct, s.width_pct) for s in steps] == [(0.0, 25.0), (25.0, 75.0), (100.0, 0.6)]
    assert steps[1].depth == 1 and steps[1].attempts == 3 and steps[2].compensation


def test_lineage_is_oldest_first_and_each_run_once() -> None:
    runs = [{"id": "B", "created_at": 2}, {"id": "A", "created_at": 1}, {"id": "B", "created_at": 2}]
    assert [r["id"] for r in lineage(runs)] == ["A", "B"]


def test_reconciliation_results_name_their_tolerance() -> None:
    run = {
        "steps": [
            {
                "step": "compare",
                "kind": "reconcile",
                "output": {
                    "matched": 3,
                    "mismatched": [{"key": "B", "field": "amount", "left": 5, "right": 7}],
                    "only_left": ["L"],
                    "only_right": [],
                },
            }
        ]
    }
    found = reconciliations(run, {"compare": {"amount": "0.01"}})
    assert found == [
        {
            "step": "compare",
            "matched": 3,
            "only_left": ["L"],
            "only_right": [],
            "mismatched": [{"key": "B", "field": "amount", "left": 5, "right": 7, "tolerance": "0.01"}],
        }
    ]


def test_sparkline_is_labelled_and_escaped() -> None:
    svg = str(sparkline([0, 2, 4], "runs of <x>"))
    assert 'aria-label="runs of &lt;x&gt;: 0, 2, 4"' in svg and "<x>" not in svg
    points = re.search(r'points="([^"]+)"', svg)
    assert points and points.group(1).split()[-1].endswith(",2.0")  # the largest value at the top


def test_the_demo_prints_the_console_url_and_a_token_to_sign_in_with() -> None:
    from runtime.commands.demo import DEMO_TOKEN, _next_steps

    text = _next_steps(8091, ["R1"])
    assert f"Console: http://127.0.0.1:8091/console/  (sign in with the token {DEMO_TOKEN})" in text


def test_source_states_of_every_kind_come_from_the_nodes_hosts() -> None:
    from types import SimpleNamespace

    from runtime.console.sources import source_states
    from runtime.service.metrics import Metrics

    def host(flow: str, kind: str, since: float | None, paused: bool = False) -> Any:
        context = SimpleNamespace(paused=lambda: paused)
        return SimpleNamespace(
            flow=SimpleNamespace(name=flow), kind=SimpleNamespace(key=kind), since=since, context=context
        )

    metrics = Metrics()
    metrics.source_delay.labels("hourly", "schedule").set(2.5)
    hosts = [
        host("hourly", "schedule", 990.0),
        host("inbox", "queue", 1000.0, paused=True),
        host("drop", "file", None),
        host("feed", "vendor-plugin", 1003.0),  # a plugin's kind: nothing is special about the known ones
    ]
    states = source_states(hosts, 1000.0, metrics)
    assert states["hourly"].kind == "schedule" and states["hourly"].lag == 10.0 and states["hourly"].delay == 2.5
    assert states["inbox"].paused and states["inbox"].lag == 0.0 and states["inbox"].delay is None
    assert states["drop"].lag is None and not states["drop"].paused
    assert states["feed"].kind == "vendor-plugin" and states["feed"].lag == 0.0  # a clock ahead is no negative lag
