"""`open_store`: which store a URL gives, where the default SQLite file goes, and clear URL errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.store.base import StoreError
from runtime.store.factory import open_store
from runtime.store.memory import MemoryStore
from runtime.store.sql import SqlStore, parse_url


def test_default_is_sqlite_in_the_project_folder(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    assert isinstance(store, SqlStore) and store.dialect == "sqlite"
    assert (tmp_path / ".syncline").is_dir()
    asyncio.run(store.open())
    asyncio.run(store.close())
    assert (tmp_path / ".syncline" / "syncline.db").is_file()


def test_relative_sqlite_paths_are_relative_to_the_project(tmp_path: Path) -> None:
    store = open_store("sqlite:///state/run.db?synchronous=normal", tmp_path)
    assert isinstance(store, SqlStore) and store.label == f"sqlite {tmp_path / 'state' / 'run.db'}"
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}", Path("/elsewhere"))
    assert isinstance(absolute, SqlStore) and absolute.label == f"sqlite {tmp_path / 'abs.db'}"


def test_memory_and_postgresql(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://", tmp_path), MemoryStore)
    for url in ("postgresql://u@db/x", "postgres://u@db/x", "postgresql+psycopg://u@db/x?pool_size=3"):
        store = open_store(url, tmp_path)
        assert isinstance(store, SqlStore) and store.dialect == "postgresql"
    target = parse_url("postgres://u:pw@db:5433/x?pool_size=3&sslmode=require")
    assert target.url.drivername == "postgresql+psycopg" and target.pool_size == 3
    assert dict(target.url.query) == {"sslmode": "require"}
    assert target.label == "postgresql db:5433/x"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://root:hunter2@db/x", "'mysql'"),
        ("postgresql+psycopg2://u:hunter2@db/x", "'postgresql+psycopg2'"),
        ("root:hunter2@db/x", "(none)"),
        ("", "(none)"),
    ],
)
def test_bad_urls_name_the_scheme_not_the_password(tmp_path: Path, url: str, scheme: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url, tmp_path)
    assert scheme in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_bad_postgresql_options(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="pool_size") as caught:
        open_store("postgresql://u:hunter2@db/x?pool_size=0", tmp_path)
    assert "hunter2" not in str(caught.value)
