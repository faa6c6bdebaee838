"""The node's worker pool (issue 10 §4): due runs are claimed in batches, up to `--concurrency` of
them execute at once, and new work is claimed at once when intake says so — also when it arrives
while a claim that found nothing is under way, never only at the next poll."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.service.service import Service
from runtime.service.workers import CLAIM_BATCH
from runtime.store.base import RunRecord
from tests.service.harness import until

FLOW = """kind: Flow
name: orders
trigger: {manual: {}}
steps:
  - id: note
    set: {seen: "{{ input.id }}"}
"""
NEVER = 3600.0  # a poll interval no test may wait for


def project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: p\n")
    (root / "flows" / "orders.yaml").write_text(FLOW)
    return root


async def started(root: Path, workers: int) -> Service:
    service = Service(root, f"sqlite:///{root / 'state.db'}", workers=workers, poll_interval=NEVER, triggers=False)
    await service.start()
    return service


def record_claims(service: Service, during: Callable[[], Any] | None = None) -> list[tuple[int, int]]:
    """Wrap the store's claim: (limit asked, runs got) per claim; `during` runs inside the first one
    that finds nothing, after the store answered (work accepted while that claim was under way)."""
    claims: list[tuple[int, int]] = []
    real = service.store.claim
    pending = [during] if during is not None else []

    async def claim(worker: str, *, now: float, lease: float, limit: int = 1) -> list[RunRecord]:
        got = await real(worker, now=now, lease=lease, limit=limit)
        claims.append((limit, len(got)))
        if not got and pending:
            await pending.pop()()
        return got

    service.store.claim = claim  # type: ignore[method-assign]
    return claims


async def test_work_accepted_while_an_empty_claim_runs_is_claimed_without_waiting_for_the_poll(
    tmp_path: Path,
) -> None:
    service = await started(project(tmp_path / "p"), workers=1)
    made: list[RunRecord] = []

    async def intake() -> None:  # what a webhook does: commit the run, then wake the workers
        made.append((await service.executor(service.plan).submit("orders", {"id": "late"})).run)
        service.workers.notify()

    record_claims(service, intake)
    try:
        service.workers.notify()  # a claim now finds nothing; the run arrives before it returns
        await until(lambda: made)

        async def finished() -> bool:
            run = await service.store.get_run(made[0].id)
            return run is not None and run.status == "succeeded"

        await until(finished, timeout=10)  # the poll would come after an hour
    finally:
        await service.stop(5.0)


async def test_runs_are_claimed_in_batches_and_at_most_the_limit_run_at_once(tmp_path: Path) -> None:
    limit = 10
    root = project(tmp_path / "p")
    service = await started(root, workers=0)  # nothing claims while the queue fills
    ids = [(await service.executor(service.plan).submit("orders", {"id": f"o{i}"})).run.id for i in range(45)]
    await service.stop(5.0)
    service = await started(root, workers=limit)
    gate = asyncio.Event()
    in_flight: set[str] = set()
    most = 0
    executed: list[str] = []
    execute = service.execute

    async def held(run: RunRecord, **options: Any) -> Any:
        nonlocal most
        in_flight.add(run.id)
        most = max(most, len(in_flight))
        await gate.wait()
        in_flight.discard(run.id)
        executed.append(run.id)
        return await execute(run, **options)

    service.execute = held  # type: ignore[method-assign]
    claims = record_claims(service)
    service.workers.notify()
    try:
        await until(lambda: len(in_flight) == limit)
        assert claims[0] == (min(limit, CLAIM_BATCH), limit)  # one claim filled every slot
        gate.set()
        await until(lambda: len(executed) == len(ids), timeout=30)
        assert sorted(executed) == sorted(ids)  # each run once
        assert most == limit
        assert all(asked <= limit and got <= asked for asked, got in claims)

        async def all_done() -> bool:
            runs = [await service.store.get_run(i) for i in ids]
            return all(r is not None and r.status == "succeeded" for r in runs)

        await until(all_done, timeout=30)
    finally:
        await service.stop(5.0)
