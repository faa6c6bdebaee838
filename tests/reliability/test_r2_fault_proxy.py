"""R2: a faulty downstream — bounded retries with backoff, then a dead letter, then a replay that
delivers exactly once per key.

A `syncline serve` process calls the sink through the loopback fault proxy (`proxy.py`); each
webhook payload names the fault its deliveries meet (the flow forwards the payload as the body).
Two flows: `backoff` (4 attempts, exponential from 200 ms, capped at 1 s, full jitter, 1 s step
timeout) and `ratelimited` (3 attempts, from 100 ms, capped at 2.5 s). All faults run at once on
one node; the scenario runs once per module and each test checks one promise of it:

    5xx, reset       4 attempts, gap k within [0, min(0.2·2^(k-1), 1) + slack], later gaps larger
                     in total than first gaps (exponential, full jitter); then a dead letter
    lost-reply       the sink applies the effect but its answer is cut (reset): 4 attempts, every
                     one reaching the sink under the same key; dead letter
    blackhole        every attempt ends at the 1 s timeout, then backoff; 4 attempts; dead letter
    delay:0.4        passes on the first attempt, at least 0.4 s late
    429:1            `Retry-After: 1` honoured: every gap ≥ 1 s (the jitter alone is ≤ 0.2 s)
    429:3600         capped at the step's 2.5 s max: gaps ≈ 2.5 s (the run waits as `retrying`)
    429-date:2       an HTTP-date `Retry-After` (1-2 s ahead) honoured the same way

Every dead letter keeps the payload and the journal (the failed step with its attempts and the
last error). Then the proxy heals and every dead letter is replayed through
`POST /api/v1/runs/{id}/replay` with an operator token: each replay succeeds with exactly one more
delivery at the sink, under the same idempotency key the failed attempts carried — so a sink that
applies once per key (and had the lost-reply effects already) applies each event exactly once.
Short: 2-6 events per fault; full: 5-20.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.node import (
    FINAL,
    Node,
    dead_letters,
    eventually,
    get_run,
    replay,
    webhook_flow,
    write_project,
)
from tests.reliability.proxy import Arrival, FaultProxy
from tests.reliability.scale import SCALES
from tests.reliability.sink import Delivery, Sink

SLACK = 0.5  # scheduling noise allowed on top of a computed wait (2 shared cores, 16 workers)
# An arrival is stamped when the proxy's thread gets to it, which on a busy machine can be a tenth of a
# second after the client started its attempt (and its timeout clock): a wait measured between two
# arrivals can look that much shorter than the wait the node really made.
EARLY = 0.25
BACKOFF = "{attempts: 4, backoff: exponential, initial: 200ms, max: 1s, on: [timeout, connect, 429, 5xx]}"
RATELIMITED = "{attempts: 3, backoff: exponential, initial: 100ms, max: 2500ms, on: [timeout, connect, 429, 5xx]}"

# fault -> (flow, attempts before the dead letter (0: it passes), events short, events full)
FAULTS: dict[str, tuple[str, int, int, int]] = {
    "5xx": ("backoff", 4, 6, 20),
    "reset": ("backoff", 4, 3, 10),
    "lost-reply": ("backoff", 4, 2, 5),
    "blackhole": ("backoff", 4, 2, 5),
    "delay:0.4": ("backoff", 0, 2, 5),
    "429:1": ("ratelimited", 3, 2, 5),
    "429:3600": ("ratelimited", 3, 2, 5),
    "429-date:2": ("ratelimited", 3, 2, 5),
}


@dataclass
class Outcome:
    mode: str
    events: dict[str, str] = field(default_factory=dict)  # event id -> fault
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> run detail after the faults
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)  # event id -> proxy arrivals (faulty)
    later: dict[str, int] = field(default_factory=dict)  # event id -> arrivals a while after its run ended
    sink_before: dict[str, int] = field(default_factory=dict)  # event id -> deliveries at the sink before healing
    letters: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> dead letter
    replays: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> replay run detail
    replay_status: dict[str, int] = field(default_factory=dict)  # event id -> POST replay status
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)  # event id -> at the sink, in the end
    replay_arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    letters_after: dict[str, dict[str, Any]] = field(default_factory=dict)  # include_replayed, after replay
    seconds: float = 0.0

    def of(self, fault: str) -> list[str]:
        return [e for e, f in self.events.items() if f == fault]

    def gaps(self, event_id: str) -> list[float]:
        times = [a.at for a in self.arrivals[event_id]]
        return [b - a for a, b in itertools.pairwise(times)]


async def scenario(mode: str, tmp: Path) -> Outcome:
    out = Outcome(mode)
    started = time.monotonic()
    flows = {
        "backoff": webhook_flow("backoff", "/hooks/backoff", retry=BACKOFF, timeout="1s"),
        "ratelimited": webhook_flow("ratelimited", "/hooks/ratelimited", retry=RATELIMITED, timeout="2s"),
    }
    project = write_project(tmp / "project", flows)
    with Sink() as sink, FaultProxy(int(sink.url.rsplit(":", 1)[1])) as proxy:
        node = Node(project, f"sqlite:///{tmp / 'store.db'}", tmp / "node.log", env={"SINK_URL": proxy.url}, workers=16)
        try:
            node.start()
            await node.wait_ready()
            async with httpx.AsyncClient(timeout=30.0) as client:
                posts = []
                for fault, (flow, _attempts, short, full) in FAULTS.items():
                    for i in range(short if mode == "short" else full):
                        event_id = f"r2-{fault.replace(':', '_')}-{i}"
                        payload = {"id": event_id, "fault": fault, "amount": i}
                        out.events[event_id] = fault
                        out.payloads[event_id] = payload
                        posts.append(client.post(f"{node.url}/hooks/{flow}", json=payload))
                replies = await asyncio.gather(*posts)
                assert all(r.status_code == 202 for r in replies), [r.text for r in replies if r.status_code != 202]
                run_ids = {e: r.json()["run_id"] for e, r in zip(out.events, replies, strict=True)}

                async def final(ids: dict[str, str], into: dict[str, dict[str, Any]]) -> str | None:
                    for event_id, run_id in ids.items():
                        if event_id in into:
                            continue
                        run = await get_run(client, node.url, run_id)
                        if run is None or run["status"] not in FINAL:
                            return f"{event_id} is {run and run['status']}"
                        into[event_id] = run
                        out.arrivals.setdefault(event_id, proxy.of_event(event_id))
                    return None

                await eventually(lambda: final(run_ids, out.runs), timeout=60, interval=0.1)
                await asyncio.sleep(1.5)  # a late extra attempt would show up by now
                out.later = {e: len(proxy.of_event(e)) for e in out.events}
                out.sink_before = {e: len(sink.of_event(e)) for e in out.events}
                out.letters = {d["run_id"]: d for d in await dead_letters(client, node.url)}

                # heal, then replay every dead letter once
                proxy.heal()
                healed = time.monotonic()
                replay_ids: dict[str, str] = {}
                for event_id, run in out.runs.items():
                    if run["status"] == "dead_lettered":
                        reply = await replay(client, node.url, run["id"])
                        out.replay_status[event_id] = reply.status_code
                        if reply.status_code == 202:
                            replay_ids[event_id] = reply.json()["run_id"]
                await eventually(lambda: final(replay_ids, out.replays), timeout=30, interval=0.1)
                await asyncio.sleep(0.5)
                out.replay_arrivals = {e: [a for a in proxy.of_event(e) if a.at >= healed] for e in replay_ids}
                out.deliveries = {e: sink.of_event(e) for e in out.events}
                out.letters_after = {
                    d["run_id"]: d for d in await dead_letters(client, node.url, include_replayed=True)
                }
            assert await node.stop() == 0, f"graceful stop failed:\n{node.log_tail()}"
        finally:
            node.kill()
    out.seconds = time.monotonic() - started
    return out


@pytest.fixture(scope="module", params=SCALES)
def r2(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    mode = str(request.param)
    outcome = asyncio.run(scenario(mode, tmp_path_factory.mktemp(f"r2-{mode}")))
    print(
        f"\nR2 {mode}: {len(outcome.events)} events, {len(outcome.letters)} dead letters, "
        f"{len(outcome.replays)} replays, {outcome.seconds:.1f}s"
    )
    yield outcome


def failed_step(run: dict[str, Any]) -> dict[str, Any]:
    steps = [s for s in run["steps"] if s["step"] == "deliver"]
    assert len(steps) == 1, run["steps"]
    step: dict[str, Any] = steps[0]
    return step


@pytest.mark.parametrize("fault", ["5xx", "reset"])
def test_r2_errors_retry_with_capped_exponential_full_jitter_backoff(r2: Outcome, fault: str) -> None:
    caps = [0.2, 0.4, 0.8]
    for event_id in r2.of(fault):
        gaps = r2.gaps(event_id)
        assert len(r2.arrivals[event_id]) == 4, f"{event_id}: {len(r2.arrivals[event_id])} attempts, want 4"
        for k, (gap, cap) in enumerate(zip(gaps, caps, strict=True), start=1):
            assert 0 <= gap <= cap + SLACK, f"{event_id}: wait {k} was {gap:.3f}s, cap {cap}s"
    # exponential growth shows in the sums even with full jitter (uniform in [0, cap])
    firsts = sum(r2.gaps(e)[0] for e in r2.of("5xx") + r2.of("reset"))
    lasts = sum(r2.gaps(e)[2] for e in r2.of("5xx") + r2.of("reset"))
    assert lasts > firsts, f"third waits ({lasts:.3f}s in total) not longer than first waits ({firsts:.3f}s)"


def test_r2_blackhole_attempts_end_at_the_timeout(r2: Outcome) -> None:
    for event_id in r2.of("blackhole"):
        gaps = r2.gaps(event_id)
        assert len(gaps) == 3, f"{event_id}: {len(gaps) + 1} attempts, want 4"
        for k, (gap, cap) in enumerate(zip(gaps, [0.2, 0.4, 0.8], strict=True), start=1):
            timeout = 1.0  # each blackholed attempt waits out the step's 1 s timeout, then backs off
            assert timeout - EARLY <= gap <= timeout + cap + SLACK, f"{event_id}: gap {k} {gap:.3f}s"
        assert failed_step(r2.runs[event_id])["error"]["reason"] == "timeout"


def test_r2_delay_below_the_timeout_passes_late(r2: Outcome) -> None:
    for event_id in r2.of("delay:0.4"):
        run = r2.runs[event_id]
        assert run["status"] == "succeeded", run
        step = failed_step(run)
        assert step["attempts"] == 1 and step["duration_ms"] >= 400, step
        assert len(r2.deliveries[event_id]) == 1


@pytest.mark.parametrize(("fault", "low", "high"), [("429:1", 1.0, 1.0), ("429-date:2", 1.0, 2.0)])
def test_r2_retry_after_is_honoured(r2: Outcome, fault: str, low: float, high: float) -> None:
    for event_id in r2.of(fault):
        gaps = r2.gaps(event_id)
        assert len(gaps) == 2, f"{event_id}: {len(gaps) + 1} attempts, want 3"
        for gap in gaps:
            assert low - EARLY <= gap <= high + SLACK, f"{event_id}: waited {gap:.3f}s, Retry-After in [{low}, {high}]"


def test_r2_retry_after_is_capped_by_the_retry_max(r2: Outcome) -> None:
    for event_id in r2.of("429:3600"):
        gaps = r2.gaps(event_id)
        assert len(gaps) == 2, f"{event_id}: {len(gaps) + 1} attempts, want 3"
        for gap in gaps:
            # 2.5 s cap; beyond the 2 s inline limit the run waits as `retrying` and a worker's poll
            # (every 0.25 s) takes it up again
            assert 2.5 - EARLY <= gap <= 2.5 + 0.25 + SLACK, f"{event_id}: waited {gap:.3f}s, cap 2.5 s"


@pytest.mark.parametrize("fault", [f for f, spec in FAULTS.items() if spec[1]])
def test_r2_exhausted_retries_dead_letter_with_payload_and_journal(r2: Outcome, fault: str) -> None:
    flow, attempts, _, _ = FAULTS[fault]
    for event_id in r2.of(fault):
        run = r2.runs[event_id]
        assert run["status"] == "dead_lettered", (event_id, run["status"])
        assert r2.later[event_id] == attempts, f"{event_id}: attempts went on after the dead letter"
        assert run["input"] == r2.payloads[event_id], "the dead letter keeps the payload"
        step = failed_step(run)
        assert step["status"] == "failed" and step["attempts"] == attempts, step
        error = step["error"]
        if fault.startswith("429"):
            assert error.get("status") == 429, error
        elif fault == "5xx":
            assert error.get("status") == 503, error
        elif fault in ("reset", "lost-reply"):
            assert error["reason"] == "connect", error
        letter = r2.letters.get(run["id"])
        assert letter is not None, f"{event_id}: run {run['id']} is not among the dead letters"
        assert letter["flow"] == flow and letter["error"], letter
        reached = attempts if fault == "lost-reply" else 0  # only a lost reply lets the effect land
        assert r2.sink_before[event_id] == reached, f"{event_id}: {r2.sink_before[event_id]} deliveries at the sink"


def test_r2_replay_after_healing_delivers_exactly_once_per_key(r2: Outcome) -> None:
    dead = [e for e, run in r2.runs.items() if run["status"] == "dead_lettered"]
    assert dead and sorted(r2.replay_status) == sorted(dead)
    for event_id in dead:
        assert r2.replay_status[event_id] == 202, (event_id, r2.replay_status[event_id])
        replayed = r2.replays[event_id]
        assert replayed["status"] == "succeeded", (event_id, replayed)
        assert replayed["replay_of"] == r2.runs[event_id]["id"]
        deliveries = r2.deliveries[event_id]
        assert len(r2.replay_arrivals[event_id]) == 1, f"{event_id}: the replay called {r2.replay_arrivals[event_id]}"
        after = len(deliveries) - r2.sink_before[event_id]
        assert after == 1, f"{event_id}: the replay made {after} deliveries at the sink, want exactly 1"
        keys = {a.key for a in r2.arrivals[event_id]} | {d.key for d in deliveries}
        assert len(keys) == 1 and None not in keys, f"{event_id}: deliveries under several keys: {keys}"
        letter = r2.letters_after[r2.runs[event_id]["id"]]
        assert letter["replay_run_id"] == replayed["id"], letter
    print(f"R2 {r2.mode}: {len(dead)} dead letters replayed; each delivered once under its original key")
