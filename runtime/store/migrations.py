"""Schema migrations of the SQL stores: an ordered list, recorded in `syncline_schema_version`.

`apply(conn)` runs inside one write transaction on open (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an
advisory lock first), so two processes opening one database at once apply each migration once.

- An empty database gets the current tables (`schema.metadata.create_all`) and is stamped with every
  version: `schema.py` always describes the newest schema.
- A database at version N gets the migrations after N, in order, each stamped as it succeeds (all in
  the one transaction: a failure leaves the database at N).
- A database newer than this code is refused with a `StoreError`.

To change the schema: edit `schema.py` (the newest shape) and append a `Migration(N + 1, ...)` whose
`upgrade` takes a database from the shape N to the shape N + 1 (`ALTER TABLE ...`, data moves).
Never edit a migration that was released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from runtime.store.base import StoreError
from runtime.store.schema import metadata, outbox, runs_by_parent, schema_version

# Arbitrary constant: the PostgreSQL advisory lock held while migrating.
PG_MIGRATION_LOCK = 0x53594E434C494E45 >> 1  # "SYNCLINE", as a positive bigint


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _create_all(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


def _add_run_stalls(conn: Connection) -> None:
    """Poison protection: `runs.stalls` and `runs.claim_steps` (0 for every existing run)."""
    for column in ("stalls", "claim_steps"):
        conn.exec_driver_sql(f"ALTER TABLE syncline_runs ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")


def _add_outbox(conn: Connection) -> None:
    """The transactional outbox of `effect: publish` calls: `syncline_outbox` and its indexes."""
    outbox.create(conn, checkfirst=True)


def _add_parent_index(conn: Connection) -> None:
    """Runs listed by their parent run (`RunFilter.parent`): `ix_syncline_runs_parent`."""
    runs_by_parent.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, journal, events, dead letters, trigger state", _create_all),
    Migration(2, "runs.stalls, runs.claim_steps: claims without progress (poison runs)", _add_run_stalls),
    Migration(3, "outbox: messages of publish calls, committed with their step", _add_outbox),
    Migration(4, "runs by parent run: ix_syncline_runs_parent", _add_parent_index),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The highest applied version, 0 for an empty database."""
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one())


def apply(conn: Connection, *, now: float, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Bring the database to the newest version inside the caller's transaction; the versions applied."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(PG_MIGRATION_LOCK)))
    version = current_version(conn)
    latest = migrations[-1].version
    if version > latest:
        raise StoreError(
            f"the database schema is at version {version}, newer than this Syncline knows ({latest}); upgrade Syncline"
        )
    if version == 0:
        _create_all(conn)
        pending = list(migrations)
    else:
        pending = [m for m in migrations if m.version > version]
        for migration in pending:
            migration.upgrade(conn)
    if pending:
        conn.execute(
            insert(schema_version),
            [{"version": m.version, "description": m.description, "applied_at": now} for m in pending],
        )
    return [m.version for m in pending]
