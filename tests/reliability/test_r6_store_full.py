"""R6: the store is full — callers get 503, no partial run appears, and intake recovers with space.

The disk is made "full" with SQLite's `max_page_count`, through the store URL option
`?max_page_count=<pages>`: a `syncline serve` process gets a cap a few dozen pages above the
file's current size, and webhooks with 20 KB payloads are posted in small concurrent bursts until one is
refused, then more one by one until five in a row are refused (the pages of a write rolled back
inside a batch may stay free, so an event may still fit). Promise: a full store answers 503
`store_unavailable`, and keeps doing so; an event refused with 503 has no run at all, and every
run that exists is whole
(its payload and its business key row, written in the same transaction); the file stays sound
(`PRAGMA integrity_check`). Then space returns — the node restarts with a larger cap — and the
refused events, posted again, are accepted, and every accepted event's run succeeds and reaches
the sink under one key. Short: one fill-and-recover cycle; full: three, each filling the file
again above the previous cap.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.reliability.node import FINAL, Node, eventually, list_runs, webhook_flow, write_project
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

CYCLES = {"short": 1, "full": 3}
HEADROOM = 48  # pages above the current size: room for a few runs, then full
PAD = 20_000  # bytes of payload per event
BURST = 4  # webhooks posted at once while filling


def page_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def run_rows(db: Path) -> dict[str, tuple[str, str, dict[str, str]]]:
    """idempotency key -> (run id, input text, business keys), read straight from the file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT id, idempotency_key, input FROM syncline_runs").fetchall()
        keys: dict[str, dict[str, str]] = {}
        for run_id, name, value in conn.execute("SELECT run_id, name, value FROM syncline_run_keys"):
            keys.setdefault(run_id, {})[name] = value
    return {key: (run_id, text, keys.get(run_id, {})) for run_id, key, text in rows}


@pytest.mark.parametrize("scale", SCALES)
async def test_r6_full_store_refuses_with_503_and_recovers(
    scale: str, tmp_path: Path, nodes: Callable[..., Node], record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    db = tmp_path / "store.db"
    project = write_project(tmp_path / "project", {"deliver": webhook_flow("deliver", "/hooks/events")})
    bodies: dict[str, bytes] = {}
    accepted: dict[str, str] = {}  # event id -> run id
    refused: list[str] = []
    report: list[str] = []
    with Sink() as sink:
        node = nodes(project, f"sqlite:///{db}", tmp_path / "node.log", env={"SINK_URL": sink.url})
        node.start()
        await node.wait_ready()
        async with httpx.AsyncClient(timeout=30.0) as client:

            async def post(event_id: str) -> httpx.Response:
                if event_id not in bodies:
                    bodies[event_id] = json.dumps({"id": event_id, "pad": "x" * PAD}).encode()
                return await client.post(
                    node.url + "/hooks/events", content=bodies[event_id], headers={"Content-Type": "application/json"}
                )

            n = 0
            for cycle in range(CYCLES[scale]):
                assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
                cap = page_count(db) + HEADROOM
                node.store = f"sqlite:///{db}?max_page_count={cap}"
                await node.restart()
                # fill, in bursts of concurrent webhooks (so one group commit holds runs that fit and
                # runs that do not), until the first refusal; then a few more, one by one, while full
                first_refusal = None
                for _ in range(50):
                    burst = [f"r6-{n + i:04d}" for i in range(1, BURST + 1)]
                    n += BURST
                    replies = await asyncio.gather(*(post(e) for e in burst))
                    for event_id, reply in zip(burst, replies, strict=True):
                        assert reply.status_code in (202, 503), f"{event_id}: {reply.status_code} {reply.text}"
                        if reply.status_code == 202:
                            accepted[event_id] = reply.json()["run_id"]
                        else:
                            refused.append(event_id)
                            first_refusal = first_refusal or reply
                    if first_refusal is not None:
                        break
                assert first_refusal is not None, f"cycle {cycle}: the store never filled up (cap {cap} pages)"
                assert first_refusal.json()["code"] == "store_unavailable", first_refusal.text
                assert first_refusal.headers.get("retry-after"), "a 503 says when to retry"
                # then one by one until five refusals in a row: a write refused inside a batch is rolled back
                # to its savepoint, and the pages SQLite had taken for it may stay free in the file, so a
                # later event can still fit — accepted only whole (checked below), never half-written
                streak = 0
                for _ in range(40):
                    n += 1
                    event_id = f"r6-{n:04d}"
                    reply = await post(event_id)
                    assert reply.status_code in (202, 503), f"{event_id} while full: {reply.status_code} {reply.text}"
                    if reply.status_code == 202:
                        accepted[event_id] = reply.json()["run_id"]
                        streak = 0
                    else:
                        refused.append(event_id)
                        streak += 1
                        if streak == 5:
                            break
                    await asyncio.sleep(0.05)
                assert streak == 5, f"cycle {cycle}: the full store kept accepting events one by one"
                # nothing half-written: refused events have no run, existing runs are whole
                rows = run_rows(db)
                ghosts = [e for e in refused if e in rows and e not in accepted]
                assert not ghosts, f"events refused with 503 have a run: {ghosts}"
                for event_id, run_id in accepted.items():
                    assert event_id in rows and rows[event_id][0] == run_id, f"{event_id}: 2xx without its run"
                for key, (run_id, text, keys) in rows.items():
                    assert json.loads(text) == json.loads(bodies[key]), f"run {run_id}: payload not whole"
                    assert keys == {"event": key}, f"run {run_id}: business keys {keys}"
                assert integrity(db) == "ok"
                report.append(f"cycle {cycle}: cap {cap} pages, {len(accepted)} accepted, 503 after")

            # space returns: a larger cap; the refused events are accepted when posted again
            assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
            node.store = f"sqlite:///{db}?max_page_count={page_count(db) + 100_000}"
            await node.restart()
            for event_id in refused:
                reply = await post(event_id)
                assert reply.status_code == 202, f"{event_id} after recovery: {reply.status_code} {reply.text}"
                accepted[event_id] = reply.json()["run_id"]

            async def all_succeeded() -> str | None:
                runs = {r["idempotency_key"]: r for r in await list_runs(client, node.url, flow="deliver")}
                waiting = [e for e in accepted if e not in runs or runs[e]["status"] not in FINAL]
                if waiting:
                    return f"{len(waiting)} runs not final, e.g. {waiting[:3]}"
                failed = {e: runs[e]["status"] for e in accepted if runs[e]["status"] != "succeeded"}
                assert not failed, f"runs that did not succeed: {failed}"
                return None

            await eventually(all_succeeded, timeout=60, interval=0.3)
        assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
    rows = run_rows(db)
    assert sorted(rows) == sorted(accepted), "one run per accepted event, no other"
    delivered = sink.keys_by_event()
    for event_id in accepted:
        assert len(delivered.get(event_id, set())) == 1, f"{event_id}: delivered under {delivered.get(event_id)}"
    assert integrity(db) == "ok"
    summary = (
        f"R6 {scale}: {'; '.join(report)}; {len(refused)} refused then accepted after recovery, "
        f"{len(accepted)} runs succeeded, {time.monotonic() - started:.1f}s"
    )
    record_property("summary", summary)
    print(summary)
