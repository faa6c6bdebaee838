"""Schedule triggers: interval fires create runs; several nodes on one store record each fire time
once (R5, on SQLite and PostgreSQL); `overlap: skip` starts no second run while one is active."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from runtime.store.base import RunFilter, RunRecord
from runtime.triggers.cron import latest_fire
from tests.service.conftest import StartNode
from tests.service.harness import Node, Sink, until, write_project
from tests.services import require_service

EVERY = """
trigger:
  schedule: {{every: {every}, overlap: {overlap}, input: {{source: clock}}}}
steps:
  - id: tick
    call: sink.post
    with: {{path: tick, body: "{{{{ input }}}}"}}
"""


def schedule(every: str = "1s", overlap: str = "allow") -> str:
    return EVERY.format(every=every, overlap=overlap)


async def fired_runs(node: Node, flow: str = "ticker") -> list[RunRecord]:
    return await node.service.store.list_runs(RunFilter(flow=flow, limit=1000))


def test_latest_fire_of_short_intervals_is_exact() -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    start = datetime(2020, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=0.2, start_date=start, timezone=UTC)
    now = datetime(2026, 11, 24, 10, 0, 0, 500_000, tzinfo=UTC)
    assert latest_fire(trigger, now) == datetime(2026, 11, 24, 10, 0, 0, 400_000, tzinfo=UTC)
    hourly = IntervalTrigger(hours=1, start_date=start, timezone=UTC)
    assert latest_fire(hourly, now) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert latest_fire(hourly, now - timedelta(microseconds=500_001)) == datetime(2026, 11, 24, 9, tzinfo=UTC)


async def test_interval_schedule_fires_runs(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ticker": schedule("500ms")}))
    await until(lambda: fired_count(node, 2), timeout=15)
    await node.service.stop_sources()
    runs = await fired_runs(node)
    assert {r.trigger for r in runs} == {"schedule"}
    for run in runs:
        await node.wait_run(run.id)
    assert all(h.body == {"source": "clock"} for h in sink.on("/tick"))
    fires = sorted(datetime.fromisoformat(r.meta["source"]["fire_time"]) for r in runs)
    assert all(f.microsecond in (0, 500_000) for f in fires)  # on the interval's grid, counted from the epoch
    assert len(set(fires)) == len(fires)


async def test_sub_second_interval_fires_every_time(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ticker": schedule("250ms")}))
    await until(lambda: fired_count(node, 4), timeout=15)
    runs = await fired_runs(node)
    assert len({r.meta["source"]["fire_time"] for r in runs}) == len(runs)
    for run in runs:  # the fire time recorded is the fire being run: on the grid, never after the run was made
        fire = datetime.fromisoformat(run.meta["source"]["fire_time"])
        assert fire.microsecond % 250_000 == 0
        assert fire.timestamp() <= run.created_at


async def fired_count(node: Node, at_least: int) -> bool:
    return len(await fired_runs(node)) >= at_least


def grid(n: int) -> datetime:
    """The n-th fire time of a schedule the test drives by hand."""
    return datetime(2026, 12, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=n)


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3", autocommit=True
        )
    except psycopg.OperationalError as exc:
        require_service("postgresql", False, f"127.0.0.1:5432: {' '.join(str(exc).split())}")
        raise AssertionError("unreachable") from exc
    name = f"syncline_service_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
async def test_r5_two_nodes_record_each_fire_once(
    tmp_path: Path, sink: Sink, nodes: StartNode, backend: str, request: pytest.FixtureRequest
) -> None:
    project = write_project(tmp_path / "p", sink.url, {"ticker": schedule("1h")})
    store_url = f"sqlite:///{tmp_path / 'state.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    # fired by hand only (a running source could take the real hour's fire too)
    first = await nodes(project, store_url, node_id="node-a", triggers=False)
    second = await nodes(project, store_url, node_id="node-b", triggers=False)
    # both nodes fire the same ten times at once, as two schedulers on one store do
    await asyncio.gather(
        *(node.service.fire_schedule("ticker", grid(n)) for n in range(10) for node in (first, second))
    )
    runs = await first.service.store.list_runs(RunFilter(flow="ticker", limit=1000))
    fires = Counter(r.meta["source"]["fire_time"] for r in runs)
    assert sorted(fires) == sorted(grid(n).isoformat() for n in range(10))
    assert max(fires.values()) == 1, f"a fire time was recorded twice: {fires}"
    for run in runs:
        await first.wait_run(run.id)
    assert len(sink.on("/tick")) == 10


async def test_r5_two_schedulers_on_one_store_fire_each_time_once(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    project = write_project(tmp_path / "p", sink.url, {"ticker": schedule("250ms")})
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    first = await nodes(project, store_url, node_id="node-a")
    second = await nodes(project, store_url, node_id="node-b")
    await until(lambda: fired_count(first, 3), timeout=15)
    for node in (first, second):
        await node.service.stop_sources()
    runs = await first.service.store.list_runs(RunFilter(flow="ticker", limit=1000))
    fires = Counter(r.meta["source"]["fire_time"] for r in runs)
    assert max(fires.values()) == 1, f"a fire time was recorded twice: {fires}"


async def test_overlap_skip_starts_no_second_run_while_one_is_active(
    tmp_path: Path, sink: Sink, nodes: StartNode
) -> None:
    sink.rule("/tick", delay=3.0)
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ticker": schedule("1h", "skip")}), triggers=False)
    await node.service.fire_schedule("ticker", grid(0))
    await until(lambda: sink.on("/tick"))  # the first run is inside its call
    for n in (1, 2, 3):
        await node.service.fire_schedule("ticker", grid(n))
    runs = await fired_runs(node)
    assert [r.meta["source"]["fire_time"] for r in runs] == [grid(0).isoformat()], [r.status for r in runs]
    await node.wait_run(runs[0].id)
    await node.service.fire_schedule("ticker", grid(4))  # the next fire after the first run ended starts one
    assert sorted(r.meta["source"]["fire_time"] for r in await fired_runs(node)) == [
        grid(0).isoformat(),
        grid(4).isoformat(),
    ]


async def test_overlap_queue_runs_fires_one_after_another(tmp_path: Path, sink: Sink, nodes: StartNode) -> None:
    sink.rule("/tick", delay=0.3)
    node = await nodes(write_project(tmp_path / "p", sink.url, {"ticker": schedule("1h", "queue")}), triggers=False)
    for n in range(4):
        await node.service.fire_schedule("ticker", grid(n))
    runs = await fired_runs(node)
    assert len(runs) == 4  # every fire is kept
    for run in runs:
        await node.wait_run(run.id)
    hits = sorted(sink.on("/tick"), key=lambda h: h.start)
    assert len(hits) == 4
    assert all(a.end <= b.start for a, b in itertools.pairwise(hits))
