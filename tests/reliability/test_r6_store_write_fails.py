"""R6, the other half: a store write fails at any point of a run's life — nothing is lost or stuck.

`test_r6_store_full.py` fills a real file; this test aims the failure. A Syncline service runs in
the test's process (webhooks over a real loopback socket, a real SQLite or PostgreSQL store, the
real sink) with its store wrapped by `FaultyStore`, which fails one chosen write of one chosen
run — once — in one of two ways:

    before   the write is refused and nothing is written (disk full, connection down)
    after    the write commits, then the caller gets an error anyway (the connection dropped
             while the commit's answer was on its way): the caller cannot tell it happened

Each event of the scenario gets its own fault point: its intake (`create_run`), its claim (only
"after": a claim refused before writing is just an idle poll), the update that starts it, the
journal write that records its step together with the run's outcome (`write_journal`); for events
the sink rejects (the run is dead-lettered) the dead-letter write; for events the sink first
answers 429 `Retry-After: 3` the write that suspends the run as `retrying`, its claim when due and
the writes after it. Those runs go through the queue (their flow has an ordering key); the runs of
a second flow without one are handed straight to a free worker slot when intake commits them (no
claim, no starting update), and get the faults of that path: intake, journal, dead letter.

Promise: a refused intake is answered 503 and the sender's repeat is accepted (202, or 200 naming
the run when the refused write had in fact committed); every run still reaches its final state
(`succeeded`, or `dead_lettered` with its dead letter) within a few leases, nobody intervening;
no event has two runs; every delivery of one event carries one idempotency key. Short: every
point on SQLite; full: every point on SQLite and on PostgreSQL, three events per point.

Found with it: a run whose dead-letter write failed was left `running` with no lease — never
claimable again, so never finished (fixed in `runtime/engine/executor.py`: the lease is kept
until the dead-letter write ends the run).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import uvicorn

from runtime.secrets import env_resolver
from runtime.service.app import build_app
from runtime.service.service import Service
from runtime.store.base import CreatedRun, NewRun, RunChanges, RunRecord, StepRecord, Store, StoreError
from tests.reliability.node import FINAL, VIEWER, eventually, free_port, webhook_flow, write_project
from tests.reliability.pg import database
from tests.reliability.scale import SCALES
from tests.reliability.sink import Sink

T = TypeVar("T")
LEASE = 1.0


@dataclass(frozen=True)
class Fault:
    method: str  # the Store method whose call fails
    nth: int  # the how-many-th call of it for this event's run
    when: str  # "before" (nothing written) or "after" (written, error reported anyway)

    @property
    def label(self) -> str:
        return f"{self.method}#{self.nth}-{self.when}"


POINTS = [
    Fault("create_run", 1, "before"),
    Fault("create_run", 1, "after"),
    Fault("claim", 1, "after"),
    Fault("update_run", 1, "before"),  # status running, attempt count
    Fault("update_run", 1, "after"),
    # the journal entry of the sink call, written with the final update (succeeded; before a dead letter:
    # error and finish time) in one transaction
    Fault("write_journal", 1, "before"),
    Fault("write_journal", 1, "after"),
]
DEAD_LETTER_POINTS = [Fault("dead_letter", 1, "before"), Fault("dead_letter", 1, "after")]
# a run whose first delivery meets 429 `Retry-After: 3` is stored as `retrying` until its due time
SUSPEND_POINTS = [
    Fault("write_journal", 1, "before"),  # the suspension: status retrying, due time, lease released
    Fault("write_journal", 1, "after"),
    Fault("claim", 2, "after"),  # claimed again when due
    Fault("update_run", 2, "before"),  # running again
    Fault("write_journal", 2, "before"),  # the journal entry of the sink call and the final update
    Fault("write_journal", 2, "after"),
]
OUTCOMES = {"ok": POINTS, "reject": POINTS + DEAD_LETTER_POINTS, "suspend": SUSPEND_POINTS}
# a run handed straight to a worker: created leased to the node, so no claim and no starting update
HANDED_POINTS = [fault for fault in POINTS if fault.method not in ("claim", "update_run")]
HANDED_OUTCOMES = {"ok": HANDED_POINTS, "reject": HANDED_POINTS + DEAD_LETTER_POINTS}
QUEUED_FLOW, HANDED_FLOW = "deliver", "handed"


def flow_of(event_id: str) -> str:
    return HANDED_FLOW if event_id.startswith("r6h-") else QUEUED_FLOW


class FaultyStore:
    """A real store whose chosen write of a chosen run fails once (see the module docstring)."""

    def __init__(self, inner: Store, plans: dict[str, Fault]) -> None:
        self.inner = inner
        self.plans = plans  # event id -> fault
        self.event_of: dict[str, str] = {}  # run id -> event id
        self.counts: Counter[tuple[str, str]] = Counter()
        self.fired: list[tuple[str, str]] = []  # (event id, fault label)
        self.claimed: set[str] = set()  # ids of the runs claims returned

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _due(self, event_id: str | None, method: str) -> Fault | None:
        fault = self.plans.get(event_id or "")
        if event_id is None or fault is None or fault.method != method:
            return None
        self.counts[(event_id, method)] += 1
        if self.counts[(event_id, method)] != fault.nth:
            return None
        self.fired.append((event_id, fault.label))
        return fault

    async def _write(self, method: str, run_id: str, call: Callable[[], Awaitable[T]]) -> T:
        fault = self._due(self.event_of.get(run_id), method)
        if fault is not None and fault.when == "before":
            raise StoreError(f"injected {fault.label}: nothing written")
        result = await call()
        if fault is not None:
            raise StoreError(f"injected {fault.label}: written, then the answer was lost")
        return result

    async def create_run(self, new: NewRun, *, now: float) -> CreatedRun:
        event_id = str(new.input.get("id")) if isinstance(new.input, dict) else None
        fault = self._due(event_id, "create_run")
        if fault is not None and fault.when == "before":
            raise StoreError(f"injected {fault.label}: nothing written")
        created = await self.inner.create_run(new, now=now)
        if event_id is not None:
            self.event_of[created.run.id] = event_id
        if fault is not None:
            raise StoreError(f"injected {fault.label}: written, then the answer was lost")
        return created

    async def claim(self, worker: str, *, now: float, lease: float, limit: int = 1) -> list[RunRecord]:
        runs = await self.inner.claim(worker, now=now, lease=lease, limit=limit)
        self.claimed.update(run.id for run in runs)
        for run in runs:
            if isinstance(run.input, dict):
                self.event_of[run.id] = str(run.input.get("id"))
            if self._due(self.event_of.get(run.id), "claim") is not None:
                raise StoreError("injected claim: claimed, then the answer was lost")
        return runs

    async def update_run(self, run_id: str, changes: RunChanges) -> None:
        await self._write("update_run", run_id, lambda: self.inner.update_run(run_id, changes))

    async def record_step(self, record: StepRecord, events: Any = ()) -> StepRecord:
        return await self._write("record_step", record.run_id, lambda: self.inner.record_step(record, events))

    async def write_journal(self, run_id: str, entries: Any, changes: RunChanges | None = None) -> None:
        await self._write("write_journal", run_id, lambda: self.inner.write_journal(run_id, entries, changes))

    async def dead_letter(self, run_id: str, reason: str, error: dict[str, Any] | None, *, now: float) -> None:
        await self._write("dead_letter", run_id, lambda: self.inner.dead_letter(run_id, reason, error, now=now))


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        with database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'store.db'}"


def sink_rule(event_id: str, nth: int) -> tuple[int, dict[str, str]] | None:
    if "-reject-" in event_id:
        return 400, {}  # not retried: the run is dead-lettered
    if "-suspend-" in event_id and nth == 1:
        return 429, {"Retry-After": "3"}
    return None


@pytest.mark.parametrize(
    ("scale", "store_url"),
    [
        pytest.param("short", "sqlite", id="short-sqlite"),
        pytest.param("full", "sqlite", id="full-sqlite", marks=SCALES[1].marks),
        pytest.param("full", "postgresql", id="full-postgresql", marks=[*SCALES[1].marks, pytest.mark.service]),
    ],
    indirect=["store_url"],
)
async def test_r6_a_failed_store_write_loses_nothing_and_strands_nothing(
    scale: str, store_url: str, tmp_path: Path
) -> None:
    copies = 1 if scale == "short" else 3
    flows = {
        QUEUED_FLOW: webhook_flow(QUEUED_FLOW, "/hooks/events", ordering_key="{{ input.id }}"),
        HANDED_FLOW: webhook_flow(HANDED_FLOW, "/hooks/handed"),
    }
    project = write_project(tmp_path / "project", flows)
    plans: dict[str, Fault] = {}
    for prefix, outcomes in (("r6w", OUTCOMES), ("r6h", HANDED_OUTCOMES)):
        for outcome, points in outcomes.items():
            for fault in points:
                for i in range(copies):
                    plans[f"{prefix}-{outcome}-{fault.label}-{i}"] = fault
    with Sink(failure=sink_rule) as sink:
        service = Service(
            project,
            store_url,
            workers=4,
            lease=LEASE,
            poll_interval=0.1,
            triggers=False,
            env=env_resolver({"SINK_URL": sink.url}),
        )
        await service.start()
        faulty = FaultyStore(service.store, plans)
        service.store = cast(Store, faulty)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                build_app(service, manage_lifecycle=False, tokens={VIEWER: "viewer"}),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.02)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=15.0) as client:
                bodies = {e: json.dumps({"id": e}).encode() for e in plans}

                async def post(event_id: str) -> httpx.Response:
                    path = "/hooks/handed" if flow_of(event_id) == HANDED_FLOW else "/hooks/events"
                    return await client.post(
                        base + path, content=bodies[event_id], headers={"Content-Type": "application/json"}
                    )

                run_of: dict[str, str] = {}

                async def deliver(event_id: str, reply: httpx.Response) -> None:
                    if plans[event_id].method == "create_run":
                        assert reply.status_code == 503, f"{event_id}: {reply.status_code} {reply.text}"
                        again = await post(event_id)
                        want = 202 if plans[event_id].when == "before" else 200
                        assert again.status_code == want, f"{event_id} repeated: {again.status_code} {again.text}"
                        reply = again
                    assert reply.status_code in (200, 202), f"{event_id}: {reply.status_code} {reply.text}"
                    run_of[event_id] = reply.json()["run_id"]

                async def settled() -> str | None:
                    stuck = []
                    for event_id, run_id in run_of.items():
                        run = await faulty.inner.get_run(run_id)
                        if run is None or run.status not in FINAL:
                            stuck.append(f"{event_id}: {run and (run.status, run.lease_owner, run.lease_expires)}")
                    return f"{len(stuck)} runs not final: {stuck[:6]}" if stuck else None

                # the queued flow's events all at once; then, on an idle node, the handed flow's one by
                # one, so each finds a free slot and is handed over
                queued = [e for e in plans if flow_of(e) == QUEUED_FLOW]
                for event_id, reply in zip(queued, await asyncio.gather(*(post(e) for e in queued)), strict=True):
                    await deliver(event_id, reply)
                await eventually(settled, timeout=12 * LEASE + 10, interval=0.2)
                handed = [e for e in plans if flow_of(e) == HANDED_FLOW]
                claimed_before = set(faulty.claimed)
                service.workers.limit += len(handed)  # a free slot for each, whatever the others still hold
                for event_id in handed:
                    await deliver(event_id, await post(event_id))
                await eventually(settled, timeout=12 * LEASE + 10, interval=0.2)
                # a handed run is claimed only to resume after a failed write (once its lease expired);
                # one whose intake was refused and repeated, or whose last write failed after committing,
                # has nothing to resume and never is
                claimed = faulty.claimed - claimed_before
                straight = {e for e in handed if run_of[e] not in claimed}
                untouched = {
                    e
                    for e in handed
                    if plans[e] in (Fault("create_run", 1, "before"), Fault("dead_letter", 1, "after"))
                    or (plans[e] == Fault("write_journal", 1, "after") and "-ok-" in e)
                }
                assert straight == untouched, f"ran without a claim: {sorted(straight)}, want {sorted(untouched)}"
                letters = {d.run_id for d in await faulty.inner.list_dead_letters(limit=1000)}
                runs = {e: await faulty.inner.get_run(r) for e, r in run_of.items()}
                for event_id in plans:
                    found = await faulty.inner.find_run(flow_of(event_id), event_id)
                    assert found == runs[event_id], "one run per event"
        finally:
            server.should_exit = True
            await serving
            await service.stop(grace=2.0)

    missed = sorted(set(plans) - {e for e, _ in faulty.fired})
    assert not missed, f"faults that never fired (the run's writes changed?): {missed}"
    keys = sink.keys_by_event()
    for event_id, run in runs.items():
        assert run is not None
        expected = "dead_lettered" if "-reject-" in event_id else "succeeded"
        assert run.status == expected, f"{event_id}: {run.status}, want {expected}: {run.error}"
        if expected == "dead_lettered":
            assert run.id in letters, f"{event_id}: dead-lettered without a dead letter"
        assert len(keys.get(event_id, set())) == 1, f"{event_id}: delivered under keys {keys.get(event_id)}"
    print(
        f"R6 write faults {scale}/{store_url.split(':')[0]}: {len(plans)} runs, each with one failed write, all final"
    )
