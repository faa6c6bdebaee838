"""`SqlStore` on SQLite: the store contract, plus pragmas, disk full, group commit and two processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert

from runtime.store import sql as sql_module
from runtime.store.base import NewRun, RunFilter, StoreError
from runtime.store.schema import schema_version
from runtime.store.sql import SqlStore
from tests.store.contract import (
    T0,
    MakeStore,
    SharedDatabaseContract,
    SqlStoreContract,
    StoreContract,
    async_test,
    run,
)
from tests.store.outbox_contract import OutboxContract, OutboxMigrationContract, SharedOutboxContract


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'syncline.db'}"


class TestSqliteStore(
    StoreContract,
    SharedDatabaseContract,
    SqlStoreContract,
    OutboxContract,
    SharedOutboxContract,
    OutboxMigrationContract,
):
    @pytest.fixture
    def make_store(self, db_url: str) -> MakeStore:
        return lambda: SqlStore(db_url)


def _pragma(conn: Connection, name: str) -> Any:
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


@async_test
async def test_pragmas_wal_full_sync_foreign_keys(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    try:
        for run_on in (store._write, store._read):  # the writer's connection and a reader's
            assert await run_on(lambda c: _pragma(c, "journal_mode")) == "wal"
            assert await run_on(lambda c: _pragma(c, "synchronous")) == 2  # FULL
            assert await run_on(lambda c: _pragma(c, "foreign_keys")) == 1
            assert await run_on(lambda c: _pragma(c, "busy_timeout")) == 10_000
    finally:
        await store.close()
    relaxed = SqlStore(db_url + "?synchronous=normal&busy_timeout=500")
    await relaxed.open()
    try:
        assert await relaxed._write(lambda c: _pragma(c, "synchronous")) == 1  # NORMAL
        assert await relaxed._read(lambda c: _pragma(c, "busy_timeout")) == 500
    finally:
        await relaxed.close()


def test_bad_options_and_paths_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="synchronous"):
        SqlStore(f"sqlite:///{tmp_path / 'x.db'}?synchronous=sometimes")
    with pytest.raises(StoreError, match="busy_timeout"):
        SqlStore(f"sqlite:///{tmp_path / 'x.db'}?busy_timeout=soon")
    with pytest.raises(StoreError, match="memory://"):
        SqlStore("sqlite://")
    missing = SqlStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")
    with pytest.raises(StoreError, match="does not exist"):
        asyncio.run(missing.open())


async def _limit_pages(store: SqlStore, extra: int) -> None:
    """Let the file grow by at most `extra` pages (SQLite's stand-in for a full disk)."""
    pages = await store._write(lambda c: _pragma(c, "page_count"))
    await store._write(lambda c: _pragma(c, f"max_page_count = {pages + extra}"))


@async_test
async def test_disk_full_fails_cleanly_and_recovers(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    try:
        await store.create_run(run(input="small"), now=T0)
        await _limit_pages(store, 0)
        big = "x" * 200_000
        for _ in range(2):  # still full: fails again, the same way
            with pytest.raises(StoreError, match="full"):
                await store.create_run(run(input=big, idempotency_key="big", business_keys={"k": "v"}), now=T0)
        assert await store.find_run("orders", "big") is None
        assert len(await store.list_runs(RunFilter())) == 1
        # a transaction whose first write fits and second does not leaves nothing either
        with pytest.raises(StoreError, match="full"):
            await store.accept_poll("poll", [("a", run(input="fits")), ("b", run(input=big))], "c", now=T0)
        assert await store.get_cursor("poll") is None
        assert len(await store.list_runs(RunFilter())) == 1
        await _limit_pages(store, 10_000)  # space is back
        created = await store.create_run(run(input=big, idempotency_key="big"), now=T0)
        assert created.created and created.run.input == big
        assert len(await store.accept_poll("poll", [("a", run()), ("b", run(input=big))], "c", now=T0)) == 2
        assert await store.get_cursor("poll") == "c"
    finally:
        await store.close()


@async_test
async def test_group_commit_batches_writes_and_isolates_a_failing_one(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    transactions = 0

    def count(conn: Connection) -> None:
        nonlocal transactions
        if conn.get_execution_options().get("syncline_immediate"):
            transactions += 1

    assert store._engine is not None
    event.listen(store._engine, "begin", count)
    try:
        await asyncio.gather(*(store.create_run(run(input={"i": i}), now=T0) for i in range(40)))
        assert transactions < 30  # the writes waiting behind the first shared commits
        assert len(await store.list_runs(RunFilter(limit=100))) == 40
        jobs: list[Any] = [store.create_run(run(input={"i": i}), now=T0) for i in range(40)]
        jobs.insert(20, store.update_run("missing", {"status": "failed"}))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert isinstance(results[20], KeyError)  # only the failing write sees an error
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 40
        assert len(await store.list_runs(RunFilter(limit=100))) == 80
    finally:
        await store.close()


@async_test
async def test_newer_schema_is_refused(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    await store._write(
        lambda c: c.execute(insert(schema_version), {"version": 999, "description": "future", "applied_at": T0})
    )
    await store.close()
    with pytest.raises(StoreError, match="newer"):
        await SqlStore(db_url).open()


def _process(url: str, start: Any, results: Any) -> None:
    """One process: 10 creates with one key, then claim until nothing is left."""

    async def main() -> tuple[int, list[str]]:
        store = SqlStore(url)
        await store.open()
        try:
            start.wait(30)
            made = await asyncio.gather(
                *(store.create_run(NewRun(flow="f", input={}, idempotency_key="same"), now=T0) for _ in range(10))
            )
            claimed: list[str] = []
            while got := await store.claim("w", now=T0 + 1, lease=600, limit=2):
                claimed.extend(r.id for r in got)
            return sum(r.created for r in made), claimed
        finally:
            await store.close()

    results.put(asyncio.run(main()))


@async_test
async def test_two_processes_on_one_file(db_url: str) -> None:
    store = SqlStore(db_url)
    await store.open()
    try:
        ids = {(await store.create_run(run(), now=T0)).run.id for _ in range(30)}
        ctx = multiprocessing.get_context("spawn")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_process, args=(db_url, start, results)) for _ in range(2)]
        for proc in procs:
            proc.start()
        start.set()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(30)
            assert proc.exitcode == 0
        assert sum(created for created, _ in outcomes) == 1
        claimed = [run_id for _, ids_ in outcomes for run_id in ids_]
        keyed = await store.find_run("f", "same")
        assert keyed is not None
        assert sorted(claimed) == sorted([*ids, keyed.id])  # every run claimed once, by one process
    finally:
        await store.close()


@async_test
async def test_locked_database_is_store_error_then_recovers(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlStore(db_url + "?busy_timeout=200")
    await store.open()
    begins: list[bool] = []
    real_begin = sql_module._Writer._begin

    def counting_begin(writer: Any) -> None:
        begins.append(True)
        real_begin(writer)

    monkeypatch.setattr(sql_module._Writer, "_begin", counting_begin)
    blocker = sqlite3.connect(tmp_path / "syncline.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        results = await asyncio.gather(*(store.create_run(run(), now=T0) for _ in range(8)), return_exceptions=True)
        assert all(isinstance(r, StoreError) and "locked" in str(r) for r in results)
        assert len(begins) == 1  # a batch that cannot begin fails as one (one busy wait), not job by job
        blocker.execute("ROLLBACK")
        assert (await store.create_run(run(), now=T0)).created
        assert len(await store.list_runs(RunFilter())) == 1
    finally:
        blocker.close()
        await store.close()
