"""Poison runs (issue 8, item 1): a run whose claims end `poison_after` times in a row without a new
journaled step (the worker crashed or lost its lease) is dead-lettered with reason `poison` on its
next claim instead of being executed again; the count is kept in the store, so a restart keeps it,
and a step journaled between claims resets it. Leases expire on a fake clock: no waiting."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.clock import FakeClock
from runtime.service.service import Service
from runtime.store.base import StepRecord

LEASE = 30.0
FLOW = """kind: Flow
name: orders
trigger: {manual: {}}
steps:
  - id: note
    set: {seen: "{{ input.id }}"}
"""


def project(root: Path, extra: str = "") -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: p\n" + extra)
    (root / "flows" / "orders.yaml").write_text(FLOW)
    return root


async def started(root: Path, clock: FakeClock, poison_after: int | None = None) -> Service:
    url = f"sqlite:///{root / 'state.db'}"
    service = Service(root, url, workers=0, lease=LEASE, clock=clock, triggers=False, poison_after=poison_after)
    await service.start()
    return service


async def abandon(service: Service, clock: FakeClock, run_id: str) -> int:
    """A worker claims the run and dies with it: nothing journaled, the lease runs out."""
    [taken] = await service.store.claim("doomed-worker", now=clock.time(), lease=LEASE)
    assert taken.id == run_id
    clock.advance(LEASE)
    return taken.stalls


async def test_third_abandoned_claim_makes_the_next_claim_dead_letter_it_across_a_restart(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    clock = FakeClock()
    service = await started(root, clock)
    try:
        made = (await service.executor(service.plan).submit("orders", {"id": "D-1"})).run
        assert [await abandon(service, clock, made.id) for _ in range(2)] == [0, 1]
    finally:
        await service.stop(1.0)
    service = await started(root, clock)  # a restart: a new store object on the same SQLite file
    try:
        assert await abandon(service, clock, made.id) == 2  # the count came through the restart
        assert await service.workers.work_once("w") == 1  # the 4th claim: 3 ended without progress
        run = await service.store.get_run(made.id)
        assert run is not None and run.status == "dead_lettered" and run.stalls == 3
        assert await service.store.journal(made.id) == []  # not executed again
        (letter,) = await service.store.list_dead_letters()
        assert letter.run_id == made.id and letter.reason == "poison"
        assert letter.error is not None and letter.error["code"] == "poison_run"
        message = letter.error["message"]
        assert "poison run" in message and "3 times in a row without journaling a step" in message
        assert "poison_after: 3" in message and "'orders'" in message
        assert run.error == letter.error
        assert service.metrics.dead_letters.labels("orders")._value.get() == 1
    finally:
        await service.stop(1.0)


async def test_a_step_journaled_between_claims_resets_the_count(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    clock = FakeClock()
    service = await started(root, clock)
    try:
        made = (await service.executor(service.plan).submit("orders", {"id": "D-2"})).run
        assert await abandon(service, clock, made.id) == 0
        assert await abandon(service, clock, made.id) == 1
        step = StepRecord(run_id=made.id, step_key="earlier", kind="set", status="succeeded")
        await service.store.record_step(step)  # progress in that claim
        assert await abandon(service, clock, made.id) == 0
        assert await abandon(service, clock, made.id) == 1
        assert await service.workers.work_once("w") == 1  # 4 claims, never 3 in a row without progress
        run = await service.store.get_run(made.id)
        assert run is not None and run.status == "succeeded", run.error
        assert await service.store.list_dead_letters() == []
    finally:
        await service.stop(1.0)


async def test_poison_after_comes_from_the_project_and_the_option_overrides_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "service: {poison_after: 1}\n")
    clock = FakeClock()
    service = await started(root, clock)
    try:
        assert service.poison_after == 1
        made = (await service.executor(service.plan).submit("orders", {"id": "D-3"})).run
        assert await abandon(service, clock, made.id) == 0
        assert await service.workers.work_once("w") == 1  # stalls 1 >= 1
        run = await service.store.get_run(made.id)
        assert run is not None and run.status == "dead_lettered"
    finally:
        await service.stop(1.0)
    service = await started(root, clock, poison_after=5)
    try:
        assert service.poison_after == 5
    finally:
        await service.stop(1.0)


def test_serve_refuses_a_poison_after_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--poison-after", "0"])
    assert exited.value.code == 2
    assert "--poison-after: expected a whole number of 1 or more, got '0'" in capsys.readouterr().err
