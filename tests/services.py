"""Skip-or-fail for tests that need a local server (PostgreSQL, brokers).

A test whose server is unreachable is skipped with the reason, unless `SYNCLINE_REQUIRE_SERVICES=1`
is set (CI sets it), in which case it fails: a missing server must never pass silently there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

REQUIRE_ENV = "SYNCLINE_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when the environment demands every service (`SYNCLINE_REQUIRE_SERVICES=1`)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def require_service(name: str, reachable: bool, why: str) -> None:
    """Return if `reachable`; otherwise skip the test, or fail it when services are required."""
    if reachable:
        return
    if services_required():
        pytest.fail(f"{name} is required ({REQUIRE_ENV}=1) but unreachable: {why}", pytrace=False)
    pytest.skip(f"{name} unreachable ({why}); set {REQUIRE_ENV}=1 to make this a failure")


PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def postgres_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database with a random name (its URL), dropped afterwards.

    Use as the body of a fixture: `yield from postgres_database("syncline_test")`. Skips (or fails,
    when services are required) if the local server is unreachable.
    """
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        require_service("postgresql", False, f"127.0.0.1:5432: {' '.join(str(exc).split())}")
        raise AssertionError("unreachable") from exc  # require_service skipped or failed already
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')  # a test may have closed it
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_public_schema(url: str) -> str:
    """Drop and re-create the `public` schema of the database at `url`; returns `url`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url
