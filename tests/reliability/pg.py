"""PostgreSQL helpers for R3/R4: a database per test, and faults made on it without touching the
shared server (other sessions use it): connections killed, connections refused, both undone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.services import PG_ADMIN, postgres_database


@contextmanager
def database() -> Iterator[str]:
    """A new database with a random name (its URL); dropped afterwards. Skips (or fails with
    SYNCLINE_REQUIRE_SERVICES=1) when 127.0.0.1:5432 is unreachable."""
    yield from postgres_database("syncline_rel")


def db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def terminate(name: str) -> int:
    """`pg_terminate_backend` for every connection to database `name` (only that one); how many."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def allow_connections(name: str, allowed: bool) -> None:
    """`ALLOW_CONNECTIONS false` refuses every new connection to the database, the superuser's too
    (`REVOKE CONNECT` would not stop `postgres`, a superuser); with `terminate` the database is down."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}')


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())
