"""R4: the same webhook delivered N times at once gives one run, and every copy the same answer.

N copies of each of a few events are posted concurrently (`asyncio.gather`, one connection each)
to a `syncline serve` process, on SQLite and on PostgreSQL. Promise: each event has exactly one
run; every copy gets a 2xx naming that run (one 202 "created", the rest 200 "already accepted");
the flow's side effect reaches the sink once; the same key with a different body is refused
with 409 — also when both bodies race: one wins, every copy of the other gets 409 naming the
winner's run. Short: 50 copies of 2 events; full: 200 copies of 4 events.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.node import FINAL, Node, eventually, get_run, list_runs, webhook_flow, write_project
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

SIZES = {"short": (50, 2), "full": (200, 4)}  # copies, events


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
@pytest.mark.parametrize("scale", SCALES)
async def test_r4_concurrent_duplicates_make_one_run(
    scale: str, store_kind: str, tmp_path: Path, nodes: Callable[..., Node], request: pytest.FixtureRequest
) -> None:
    copies, events = SIZES[scale]
    store = f"sqlite:///{tmp_path / 'store.db'}"
    if store_kind == "postgresql":
        store = request.getfixturevalue("pg_url")
    project = write_project(tmp_path / "project", {"deliver": webhook_flow("deliver", "/hooks/events")})
    with Sink(delay=0.05) as sink:
        node = nodes(project, store, tmp_path / "node.log", env={"SINK_URL": sink.url}, workers=4)
        node.start()
        await node.wait_ready()
        limits = httpx.Limits(max_connections=copies * events, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
            bodies = {f"r4-{i}": json.dumps({"id": f"r4-{i}", "amount": i * 10}).encode() for i in range(events)}

            async def post(event_id: str, body: bytes) -> httpx.Response:
                return await client.post(
                    node.url + "/hooks/events", content=body, headers={"Content-Type": "application/json"}
                )

            # copies of different events interleaved, all in flight at once
            order = [event_id for _ in range(copies) for event_id in bodies]
            replies = await asyncio.gather(*(post(e, bodies[e]) for e in order))

            by_event: dict[str, list[httpx.Response]] = {}
            for event_id, reply in zip(order, replies, strict=True):
                by_event.setdefault(event_id, []).append(reply)
            run_of: dict[str, str] = {}
            for event_id, answers in by_event.items():
                codes = Counter(r.status_code for r in answers)
                assert codes == {202: 1, 200: copies - 1}, f"{event_id}: one 202 then 200s expected, got {codes}"
                run_ids = {r.json()["run_id"] for r in answers}
                assert len(run_ids) == 1, f"{event_id}: copies named {len(run_ids)} different runs"
                locations = {r.headers["location"] for r in answers}
                assert locations == {f"/api/v1/runs/{next(iter(run_ids))}"}
                run_of[event_id] = next(iter(run_ids))

            # the same key with a different body: 409, naming the original run
            changed = json.dumps({"id": "r4-0", "amount": -1}).encode()
            conflict = await post("r4-0", changed)
            assert conflict.status_code == 409, conflict.text
            assert conflict.json()["run_id"] == run_of["r4-0"]

            # one key, two bodies, all at once: one body wins (one 202, then 200s), the other gets 409s
            race = {
                "a": json.dumps({"id": "r4-race", "amount": 1}).encode(),
                "b": json.dumps({"id": "r4-race", "amount": 2}).encode(),
            }
            sides = [side for _ in range(copies // 2) for side in race]
            raced = await asyncio.gather(*(post("r4-race", race[side]) for side in sides))
            winner = next(side for side, r in zip(sides, raced, strict=True) if r.status_code == 202)
            for side, reply in zip(sides, raced, strict=True):
                assert reply.status_code in ((200, 202) if side == winner else (409,)), (side, reply.text)
            assert sum(r.status_code == 202 for r in raced) == 1
            assert len({r.json()["run_id"] for r in raced}) == 1, "409s and 2xx must name the one run"
            run_of["r4-race"] = raced[0].json()["run_id"]
            bodies["r4-race"] = race[winner]

            async def all_done() -> str | None:
                for run_id in run_of.values():
                    run = await get_run(client, node.url, run_id)
                    if run is None or run["status"] not in FINAL:
                        return f"run {run_id} is {run and run['status']}"
                return None

            await eventually(all_done, timeout=30)
            runs = await list_runs(client, node.url, flow="deliver")
            details: list[dict[str, Any]] = [r for r in runs if r["idempotency_key"] in bodies]
        assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"

        assert sorted(r["id"] for r in details) == sorted(run_of.values()), "exactly one run per event"
        assert all(r["status"] == "succeeded" for r in details), [r["status"] for r in details]
        keys = sink.keys_by_event()
        for event_id in bodies:
            deliveries = sink.of_event(event_id)
            assert len(deliveries) == 1, f"{event_id}: the sink saw {len(deliveries)} deliveries"
            assert len(keys[event_id]) == 1
        print(f"R4 {scale}/{store_kind}: {events} events x {copies} copies -> {len(details)} runs, codes ok")
