"""Fixtures for the SQL connector: a SQLite file per test and a throwaway PostgreSQL database per session.

`backend` runs a test on both databases (the shared contract); PostgreSQL comes from 127.0.0.1:5432
(trust auth, user postgres) and is skipped when unreachable unless SYNCLINE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.sql import SqlConfig, SqlConnector, SqlOperation, create
from runtime.connector_api import ConnectorContext
from tests.services import empty_public_schema, postgres_database

T = TypeVar("T")

Make = Callable[..., SqlConnector]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database with a random name; dropped when the session ends."""
    yield from postgres_database("syncline_test")


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session database with an empty `public` schema."""
    return empty_public_schema(pg_database)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Build a connector from a URL, operations (dicts) and config overrides; closed after the test."""
    made: list[SqlConnector] = []

    def factory(
        url: str,
        operations: dict[str, dict[str, Any]] | None = None,
        *,
        redact: Callable[[str], str] | None = None,
        **config: Any,
    ) -> SqlConnector:
        context = ConnectorContext(connection="db", project_dir=str(tmp_path))
        if redact is not None:
            context.redact = redact
        ops = {name: SqlOperation.model_validate(spec) for name, spec in (operations or {}).items()}
        connector = create(SqlConfig(url=url, **config), ops, context)
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        run(connector.aclose())
