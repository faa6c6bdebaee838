"""`SqlStore` on PostgreSQL: the store contract, plus killed connections and an unreachable server.

PostgreSQL comes from 127.0.0.1:5432 (trust auth, user postgres). The session creates a database
with a random name and drops it at the end; each test starts from an empty `public` schema. When
the server is unreachable the tests are skipped, or fail with SYNCLINE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from runtime.store.base import RunFilter, StoreError
from runtime.store.sql import SqlStore
from tests.services import PG_ADMIN, empty_public_schema, postgres_database
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

pytestmark = pytest.mark.service


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database with a random name; dropped when the session ends."""
    yield from postgres_database("syncline_store")


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session database with an empty `public` schema."""
    return empty_public_schema(pg_database)


class TestPostgresStore(
    StoreContract,
    SharedDatabaseContract,
    SqlStoreContract,
    OutboxContract,
    SharedOutboxContract,
    OutboxMigrationContract,
):
    @pytest.fixture
    def make_store(self, pg_url: str) -> MakeStore:
        return lambda: SqlStore(pg_url)


def _store_backends(url: str) -> str:
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{url.rsplit('/', 1)[1]}' AND application_name = 'syncline'"
    )


@async_test
async def test_killed_connections_are_replaced_without_errors(pg_url: str) -> None:
    store = SqlStore(pg_url)
    await store.open()
    try:
        made = (await store.create_run(run(), now=T0)).run
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            killed = admin.execute(_store_backends(pg_url)).fetchall()
        assert killed  # the pool held at least one connection
        assert await store.get_run(made.id) == made  # pre-ping noticed and reconnected
        assert (await store.create_run(run(), now=T0)).created
    finally:
        await store.close()


@async_test
async def test_connection_lost_mid_write_is_store_error_then_recovers(pg_url: str) -> None:
    store = SqlStore(pg_url)
    await store.open()
    try:
        with psycopg.connect(pg_url) as locker, psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            locker.execute("LOCK TABLE syncline_runs IN ACCESS EXCLUSIVE MODE")
            pending = asyncio.ensure_future(store.create_run(run(idempotency_key="cut"), now=T0))
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'syncline' AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + 10
            while admin.execute(waiting).fetchone() != (1,):
                assert time.monotonic() < deadline, "the write never blocked on the lock"
                await asyncio.sleep(0.02)
            admin.execute(_store_backends(pg_url))  # the server drops the store's connection mid-write
            with pytest.raises(StoreError, match=r"postgresql 127\.0\.0\.1:5432"):
                await pending
            locker.rollback()
        assert await store.find_run("orders", "cut") is None  # nothing was half-written
        assert (await store.create_run(run(idempotency_key="cut"), now=T0)).created
        assert len(await store.list_runs(RunFilter())) == 1
    finally:
        await store.close()


@async_test
async def test_unreachable_server_is_store_error_without_password() -> None:
    store = SqlStore("postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "postgresql 127.0.0.1:1/nowhere" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(store)
    assert await store.ping() is False
