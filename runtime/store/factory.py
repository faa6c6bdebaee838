"""`open_store`: the store for a project's `store.url` (SQLite by default, PostgreSQL, or memory).

    None                      sqlite:///<project_dir>/.syncline/syncline.db (the folder is created)
    sqlite:///relative.db     a file relative to the project folder; sqlite:////abs/path.db absolute
    postgresql://user@host/db PostgreSQL (psycopg 3); postgres:// and postgresql+psycopg:// also work
    memory://                 in-process, lost on exit (tests)

The store comes back unopened: `await store.open()` connects and migrates. A URL that cannot be used
raises `StoreError` naming its scheme, never echoing the URL (it may hold a password).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from runtime.store.base import Store, StoreError
from runtime.store.memory import MemoryStore
from runtime.store.sql import SqlStore

DEFAULT_DB = Path(".syncline") / "syncline.db"


def _scheme(url: str) -> str:
    """The URL's scheme, or "" when it has none (a bare `user:password@host` has none)."""
    if "://" not in url:
        return ""
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def default_url(project_dir: Path) -> str:
    """The SQLite file of a project, creating its `.syncline` folder."""
    path = (project_dir / DEFAULT_DB).absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    return f"sqlite:///{path}"


def open_store(url: str | None, project_dir: Path) -> Store:
    """The store for `url` (None: the project's SQLite file); see the module docstring."""
    if url is None:
        return SqlStore(default_url(project_dir))
    scheme = _scheme(url.strip())
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("sqlite", "sqlite+pysqlite"):
        prefix, _, rest = url.strip().partition(":///")
        if not rest:
            raise StoreError("sqlite store URL needs a file path: sqlite:///relative.db or sqlite:////abs/path.db")
        path, sep, query = rest.partition("?")
        if not Path(path).is_absolute():
            resolved = (project_dir / path).absolute()
            if resolved.parent.name == ".syncline":  # the project's own state folder is created on demand
                try:
                    resolved.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create {resolved.parent}: {exc.strerror or exc}") from None
            path = str(resolved)
        return SqlStore(f"{prefix}:///{path}{sep}{query}")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return SqlStore(url.strip())
    shown = f"{scheme!r}" if scheme else "(none)"
    raise StoreError(
        f"unsupported store URL scheme {shown}; use sqlite:///path, postgresql://user@host/db or memory://"
    )
