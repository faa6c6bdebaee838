"""R3: PostgreSQL connections killed and the database down mid-load — no 2xx without a commit,
503 while down, recovery without an operator, no duplicate run.

A `syncline serve` process runs on its own PostgreSQL database (random name, dropped afterwards)
under steady webhook load; the flow posts each payload to the sink. Faults, all made from a
separate admin connection and confined to that one database:
- connection kills: `pg_terminate_backend` of every connection to the database, several times;
- an outage: `ALTER DATABASE ... ALLOW_CONNECTIONS false` plus `pg_terminate_backend`, held for a
  while, then `ALLOW_CONNECTIONS true`. (`REVOKE CONNECT` would not lock out the `postgres`
  superuser the service connects as; `ALLOW_CONNECTIONS` does.)
QUALITY.md also names `pg_ctlcluster ... restart`. The PostgreSQL server on this machine is shared
with other sessions, so it is never restarted: terminate + disallowed connections produce what a
restart looks like to a client (every connection dropped, new ones refused until it is back).

Proven: every 2xx names a run that is committed with that event's key; every webhook that
started after the outage began and ended before it was over was answered 503 (and /readyz was
503); webhooks are accepted again soon after the database is back, with nobody touching the
service; every accepted event's run succeeds, no event has two runs, and the sink saw each event
under one idempotency key; no step is journaled as succeeded twice. Short: 3 connection kills
and one 2 s outage; full: 10 kills and two 5 s outages.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.load import LoadGenerator, sender
from tests.reliability.node import FINAL, JOURNAL_TWICE, Node, eventually, list_runs, webhook_flow, write_project
from tests.reliability.pg import allow_connections, db_name, query, terminate
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

pytestmark = pytest.mark.service

SIZES = {"short": (3, 1, 2.0), "full": (10, 2, 5.0)}  # connection kills, outages, seconds per outage
RATE = 40.0
RECOVERY = 10.0  # seconds after the database is back within which webhooks must be accepted again


@pytest.mark.parametrize("scale", SCALES)
async def test_r3_postgres_faults_never_ack_uncommitted_and_recover(
    scale: str,
    pg_url: str,
    tmp_path: Path,
    nodes: Callable[..., Node],
    record_property: Callable[[str, object], None],
) -> None:
    kills, outages, outage_seconds = SIZES[scale]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    started = time.monotonic()
    name = db_name(pg_url)
    project = write_project(tmp_path / "project", {"deliver": webhook_flow("deliver", "/hooks/events")})
    windows: list[tuple[float, float]] = []  # (down, up) in time.monotonic()
    readyz_down: list[int] = []
    killed: list[int] = []
    with Sink(delay=0.03) as sink:
        node = nodes(project, pg_url, tmp_path / "node.log", env={"SINK_URL": sink.url}, lease=2.0, workers=4)
        node.start()
        await node.wait_ready()
        async with sender() as client:
            load = LoadGenerator(client, lambda: node.url + "/hooks/events", prefix="r3", rate=RATE)
            generator = asyncio.create_task(load.run())
            try:
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(0.5, 1.2))
                    killed.append(await asyncio.to_thread(terminate, name))
                for _ in range(outages):
                    await asyncio.sleep(rng.uniform(0.5, 1.0))
                    await asyncio.to_thread(allow_connections, name, False)
                    killed.append(await asyncio.to_thread(terminate, name))
                    down = time.monotonic()
                    await asyncio.sleep(outage_seconds / 2)
                    readyz_down.append((await client.get(node.url + "/readyz")).status_code)
                    await asyncio.sleep(outage_seconds / 2)
                    up = time.monotonic()
                    await asyncio.to_thread(allow_connections, name, True)
                    windows.append((down, up))
                    await asyncio.sleep(RECOVERY / 2)
            finally:
                load.stop()
                await generator
                await asyncio.to_thread(allow_connections, name, True)
            await load.settle(timeout=30)
            accepted = load.accepted()

            async def all_final() -> str | None:
                runs = await list_runs(client, node.url, flow="deliver")
                active = [r for r in runs if r["status"] not in FINAL]
                return f"{len(active)} runs not final" if active else None

            await eventually(all_final, timeout=60, interval=0.5)
        assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
    elapsed = time.monotonic() - started
    context = f"seed {seed}; node log {node.log_path}"

    rows = query(pg_url, "SELECT id, idempotency_key, status FROM syncline_runs WHERE flow = 'deliver'")
    run_of = {str(key): str(run_id) for run_id, key, _ in rows}
    status_of = {str(key): str(status) for _, key, status in rows}
    # no 2xx without a commit; every 2xx for one event named the same run
    for event_id, run_ids in accepted.items():
        assert run_ids == {run_of.get(event_id)}, f"{event_id}: 2xx named {run_ids}, stored {run_of.get(event_id)}"
    # no duplicate run
    assert len(rows) == len(run_of), f"{len(rows) - len(run_of)} events have more than one run ({context})"
    # every attempt had an HTTP answer: 2xx, or 503 when the store failed; never a 500 or a hang
    odd = {k: v for k, v in load.statuses().items() if k not in ("200", "202", "503")}
    assert not odd, f"answers other than 2xx/503: {odd} ({context})"
    # 503 while down; accepted again soon after, without anybody touching the service
    for down, up in windows:
        inside = [a for a in load.attempts if a.started >= down and a.ended <= up]
        assert inside, "the load generator sent nothing during the outage"
        wrong = [a for a in inside if a.status != 503]
        assert not wrong, f"answers during the outage other than 503: {wrong[:5]} ({context})"
        back = [a.started - up for a in load.attempts if a.started >= up and a.accepted]
        assert back and min(back) <= RECOVERY, f"no webhook accepted within {RECOVERY}s of recovery ({context})"
    assert readyz_down and all(code == 503 for code in readyz_down), f"/readyz during outages: {readyz_down}"
    again = query(pg_url, JOURNAL_TWICE)
    assert not again, f"steps recorded as succeeded more than once: {again[:5]} ({context})"
    # none lost; the sink saw each accepted event under one key, and nothing without a run
    not_ok = {e: status_of.get(e) for e in accepted if status_of.get(e) != "succeeded"}
    assert not not_ok, f"accepted events whose run did not succeed: {list(not_ok.items())[:10]} ({context})"
    keys = sink.keys_by_event()
    assert all(len(keys.get(e, set())) == 1 for e in accepted), f"an event unseen or under two keys ({context})"
    assert not [e for e in keys if e not in run_of], f"the sink saw events without a run ({context})"

    answered_503 = sum(1 for a in load.attempts if a.status == 503)
    recovery = [
        min((a.started - up for a in load.attempts if a.started >= up and a.accepted), default=-1.0)
        for _, up in windows
    ]
    summary = (
        f"R3 {scale}: {kills} connection kills + {outages} outages of {outage_seconds}s "
        f"(backends killed {killed}), {len(load.bodies)} events, {len(accepted)} accepted, {len(rows)} runs, "
        f"{answered_503} answers 503, accepted again {[f'{r:.2f}s' for r in recovery]} after each outage, "
        f"{elapsed:.1f}s"
    )
    record_property("summary", summary)
    print(summary)
