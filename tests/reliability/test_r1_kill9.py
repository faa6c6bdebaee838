"""R1: `kill -9` of `syncline serve` mid-load, round after round, loses no accepted event.

A load generator posts webhooks (unique id and body each) to a node on SQLite; the flow posts each
payload to the sink, which is slow (runs are in flight when the node dies), fails some events'
first delivery with 503 (retried inline: the run stays `running`) and others with 429
`Retry-After: 3` (the run is suspended as `retrying` with a due time). Each round lets the load
run on the live node, reads which runs are in which phase, kills the node with SIGKILL, leaves it
down a moment (the sender meets refused connections) and restarts it on the same store with a
2 s lease, so the dead node's running runs are picked up again. At the end the sender posts
every event without a 2xx again (as a real sender retries), and the test waits until every run
is final. Short: 3 rounds; full: 10 rounds with longer load phases.

Proven, for every event that ever got a 2xx:
- the 2xx named a run that was committed (it exists, with that event's idempotency key), and
  every 2xx for one event named the same run;
- the run succeeded (none lost, none left behind), and no event has more than one run;
- the sink saw the event; every delivery of one event carried one and the same idempotency key,
  so a repeated delivery (the price of a kill between the effect and its journal entry) is a
  repeat of the same key, never a new key;
- the sink saw nothing for an event that has no run;
- no step is journaled as succeeded twice (a resumed run skips what its journal shows as done).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.reliability.load import LoadGenerator, sender
from tests.reliability.node import (
    ACTIVE,
    FINAL,
    JOURNAL_TWICE,
    Node,
    eventually,
    get_run,
    list_runs,
    webhook_flow,
    write_project,
)
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

SIZES = {"short": (3, (0.8, 1.5)), "full": (10, (1.0, 3.0))}  # rounds, seconds of load per round
RATE = 40.0  # new events per second
LEASE = 2.0


def first_failure(event_id: str, nth: int) -> tuple[int, dict[str, str]] | None:
    n = int(event_id.rsplit("-", 1)[1])
    if nth > 1:
        return None
    if n % 10 == 3:
        return 429, {"Retry-After": "3"}  # suspended as `retrying` until its due time
    if n % 10 == 7:
        return 503, {}  # retried inline after a short backoff
    return None


async def phases(client: httpx.AsyncClient, base: str) -> Counter[str]:
    runs = await list_runs(client, base, flow="deliver", status=",".join(ACTIVE))
    return Counter(r["status"] for r in runs)


@pytest.mark.parametrize("scale", SCALES)
async def test_r1_kill9_rounds_lose_no_accepted_event(
    scale: str, tmp_path: Path, nodes: Callable[..., Node], record_property: Callable[[str, object], None]
) -> None:
    rounds, (low, high) = SIZES[scale]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    started = time.monotonic()
    project = write_project(tmp_path / "project", {"deliver": webhook_flow("deliver", "/hooks/events")})
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with Sink(delay=0.05, failure=first_failure) as sink:
        node = nodes(project, store, tmp_path / "node.log", env={"SINK_URL": sink.url}, lease=LEASE, workers=4)
        node.start()
        await node.wait_ready()
        async with sender() as client:
            load = LoadGenerator(client, lambda: node.url + "/hooks/events", prefix="r1", rate=RATE)
            generator = asyncio.create_task(load.run())
            seen: list[Counter[str]] = []
            try:
                for _ in range(rounds):
                    await asyncio.sleep(rng.uniform(low, high))
                    seen.append(await phases(client, node.url))
                    node.kill()
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
                    await node.restart()
                await asyncio.sleep(0.5)
            finally:
                load.stop()
                await generator
            await load.settle(timeout=30)
            accepted = load.accepted()

            async def all_final() -> str | None:
                runs = await list_runs(client, node.url, flow="deliver")
                active = [r for r in runs if r["status"] not in FINAL]
                return f"{len(active)} runs not final, e.g. {active[:1]}" if active else None

            await eventually(all_final, timeout=60, interval=0.5)
            runs = await list_runs(client, node.url, flow="deliver")
            committed = {run_id for ids in accepted.values() for run_id in ids}
            missing = [r for r in committed if r not in {x["id"] for x in runs}]
            looked_up = {r: await get_run(client, node.url, r) for r in missing[:5]}
        assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
    elapsed = time.monotonic() - started

    context = f"seed {seed}; node log {node.log_path}"
    # every 2xx named one committed run of that event
    assert not missing, f"2xx answers named runs that do not exist: {looked_up} ({context})"
    by_key: dict[str, list[str]] = {}
    for r in runs:
        by_key.setdefault(str(r["idempotency_key"]), []).append(str(r["id"]))
    twice = {k: v for k, v in by_key.items() if len(v) > 1}
    assert not twice, f"events with more than one run: {list(twice.items())[:5]} ({context})"
    for event_id, run_ids in accepted.items():
        assert len(run_ids) == 1, f"{event_id}: 2xx answers named different runs {run_ids} ({context})"
        assert by_key.get(event_id) == list(run_ids), f"{event_id}: run {by_key.get(event_id)} vs {run_ids}"
    # none lost: every accepted event's run succeeded
    status_of = {str(r["idempotency_key"]): str(r["status"]) for r in runs}
    not_ok = {e: status_of.get(e) for e in accepted if status_of.get(e) != "succeeded"}
    assert not not_ok, f"accepted events whose run did not succeed: {list(not_ok.items())[:10]} ({context})"
    # the sink saw every accepted event, each under one key; nothing for events without a run
    keys = sink.keys_by_event()
    applied = sink.applied()
    unseen = [e for e in accepted if e not in keys]
    assert not unseen, f"accepted events the sink never saw: {unseen[:10]} ({context})"
    several = {e: k for e, k in keys.items() if len(k) != 1 or None in k}
    assert not several, f"events delivered under more than one key: {list(several.items())[:5]} ({context})"
    assert all(any(d.status < 300 for d in sink.of_event(e)) for e in accepted), "an event was never applied"
    phantom = [e for e in keys if e not in status_of]
    assert not phantom, f"the sink saw events that have no run: {phantom[:10]} ({context})"
    # a step the journal shows as done is never run (and recorded) again
    with sqlite3.connect(f"file:{tmp_path / 'store.db'}?mode=ro", uri=True) as db:
        again = db.execute(JOURNAL_TWICE).fetchall()
    assert not again, f"steps recorded as succeeded more than once: {again[:5]} ({context})"
    # the kills hit runs in every phase
    total: Counter[str] = Counter()
    for counts in seen:
        total.update(counts)
    for phase in ("queued", "running", "retrying"):
        assert total[phase] > 0, f"no kill happened with a run {phase}: {seen} ({context})"

    repeated = {k: len(v) for k, v in applied.items() if len(v) > 1}
    summary = (
        f"R1 {scale}: {rounds} kills, {len(load.bodies)} events, {len(accepted)} accepted, {len(runs)} runs, "
        f"answers {load.statuses()}, in flight at the kills {[dict(c) for c in seen]}, "
        f"{len(repeated)} keys delivered again (same key) {sorted(repeated.values())[-5:]}, {elapsed:.1f}s"
    )
    record_property("summary", summary)
    print(summary)
