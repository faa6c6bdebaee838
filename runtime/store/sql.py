"""`SqlStore`: the `Store` protocol on SQLAlchemy 2 Core, for SQLite (default) and PostgreSQL.

URLs: `sqlite:///path/to/file.db` (`?synchronous=normal` trades the last commits before a power cut
for speed, default `full`; `?busy_timeout=<ms>`, default 10000; `?max_page_count=<pages>` caps the
file's size, as a quota or to test a full disk) and `postgresql://user@host/db`
(driven by psycopg 3; `?pool_size=<n>`, default 5; other query options go to libpq).

Threads and transactions:
- SQLite: one connection per store runs every write (`_Writer`). The writes waiting, up to 64, go
  into one `BEGIN IMMEDIATE` transaction (group commit: one fsync for all of them); each caller gets
  its result only after that commit. The writes' statements run on the event loop's thread, each
  write in a SAVEPOINT so a failing one is rolled back alone; BEGIN (which may wait for another
  process's lock) and COMMIT (the fsync) run on the writer's thread — see `_Writer` for why.
  `BEGIN IMMEDIATE` takes the file's write lock up front, so several processes (or stores) on one
  file are serialised by SQLite itself and a uniqueness check cannot race. Reads run on a small
  thread pool with their own connections (WAL: readers never block the writer).
- PostgreSQL: reads and writes run on a small thread pool, one transaction per call, READ
  COMMITTED. Uniqueness rests on unique indexes (`INSERT ... ON CONFLICT DO NOTHING`, then select),
  claims on `SELECT ... FOR UPDATE SKIP LOCKED`, a run's journal on a row lock of the run, and event
  ids on a transaction-scoped advisory lock (ids then commit in order). Connections are checked
  before use (`pool_pre_ping`), so a restarted server costs the calls made while it is down
  (`StoreError`) and nothing after.

Every SQLAlchemy/driver error becomes a `StoreError` naming the database without its password;
statement parameters (payloads) never appear in messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Integer,
    bindparam,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from runtime.expr.jsonvalues import dumps
from runtime.store import migrations
from runtime.store.base import (
    CLAIMABLE_STATUSES,
    PARKED_MARK,
    PENDING_STATUSES,
    CreatedRun,
    DeadLetter,
    EventRecord,
    JournalEntry,
    NewRun,
    OutboxMessage,
    OutboxRecord,
    OutboxStatus,
    RunChanges,
    RunFilter,
    RunRecord,
    StepRecord,
    StoreError,
    new_run_id,
)
from runtime.store.schema import (
    business_key_rows,
    change_values,
    created_record,
    cursors,
    dead_letter_record,
    dead_letters,
    decode_cursor,
    due_clause,
    entity_states,
    event_record,
    event_row,
    events,
    is_conflict,
    journal_rows,
    new_run_row,
    not_blocked_clause,
    outbox,
    outbox_record,
    outbox_rows,
    poll_items,
    run_keys,
    run_record,
    runs,
    schedule_fires,
    statuses,
    step_record,
    step_row,
    steps,
)

T = TypeVar("T")
Job = Callable[[Connection], T]
Row = dict[str, Any]

PG_EVENTS_LOCK = 0x53594E434C4E4556 >> 1  # advisory lock serialising event inserts ("SYNCLNEV")
SQLITE_SYNCHRONOUS = ("off", "normal", "full", "extra")
MAX_BATCH = 64


# ---- URLs ----


@dataclass(frozen=True)
class _Target:
    url: URL  # what SQLAlchemy connects to (our own options removed)
    dialect: str  # "sqlite" | "postgresql"
    label: str  # for messages: no password
    synchronous: str = "full"
    busy_timeout_ms: int = 10_000
    max_page_count: int | None = None  # SQLite: PRAGMA max_page_count on every connection
    pool_size: int = 5


def _int_option(url: URL, name: str, default: int, label: str) -> int:
    raw = url.query.get(name)
    if raw is None:
        return default
    text = raw if isinstance(raw, str) else raw[-1]
    if not text.isdigit() or int(text) < 1:
        raise StoreError(f"{label}: option {name}={text!r} must be a positive integer")
    return int(text)


def parse_url(text: str) -> _Target:
    """Check a store URL and split it into the SQLAlchemy URL and Syncline's own options."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        scheme = text.split("://", 1)[0] if "://" in text else ""
        raise StoreError(f"invalid store URL (scheme {scheme!r}); expected sqlite:///path or postgresql://…") from None
    driver = url.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        label = f"sqlite {url.database}"
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StoreError(
                "sqlite store URL needs a file path (sqlite:///path/to/syncline.db); use memory:// for tests"
            )
        raw_sync = url.query.get("synchronous", "full")
        synchronous = (raw_sync if isinstance(raw_sync, str) else raw_sync[-1]).lower()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise StoreError(f"{label}: synchronous={synchronous!r} is not one of {', '.join(SQLITE_SYNCHRONOUS)}")
        busy = _int_option(url, "busy_timeout", 10_000, label)
        pages = _int_option(url, "max_page_count", 0, label) or None
        url = url.set(drivername="sqlite+pysqlite").difference_update_query(
            ["synchronous", "busy_timeout", "max_page_count"]
        )
        return _Target(url, "sqlite", label, synchronous=synchronous, busy_timeout_ms=busy, max_page_count=pages)
    if driver in ("postgresql", "postgres", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+psycopg")
        label = f"postgresql {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        pool_size = _int_option(url, "pool_size", 5, label)
        url = url.difference_update_query(["pool_size"])
        return _Target(url, "postgresql", label, pool_size=pool_size)
    raise StoreError(f"unsupported store URL scheme {driver.split('+')[0]!r}; use sqlite:///path or postgresql://…")


# ---- the writer thread (SQLite) ----


@dataclass
class _Work(Generic[T]):
    fn: Job[T]
    future: asyncio.Future[T]  # of the event loop that submitted the job
    loop: asyncio.AbstractEventLoop


def _settle(outcomes: list[tuple[_Work[Any], bool, Any]]) -> None:
    """On the event loop: hand each job its result or error (a caller that gave up is skipped)."""
    for work, ok, value in outcomes:
        if work.future.done():
            continue
        if ok:
            work.future.set_result(value)
        else:
            work.future.set_exception(value)


class _Writer:
    """SQLite writes: group commit, with the jobs' statements run on the event loop's thread.

    Every statement through Python's sqlite3 lets go of the GIL and takes it back afterwards. On a
    writer thread of its own, taking it back meant waiting for the busy event loop to let go: about
    100 µs per statement under P1 load, where a 16-job batch took 4.2 ms of which SQLite's work was
    0.2 ms and the fsync 0.14 ms — and that thread became the node's bottleneck. So the jobs run on
    the loop's thread, each inside a SAVEPOINT (a failing job is rolled back alone, the others
    stay), and only `BEGIN IMMEDIATE` (which may wait for another process's write lock) and `COMMIT`
    (the fsync) go to a thread of their own. Jobs that arrive meanwhile form the next batch, begun
    right after the commit. Each caller gets its result only after its batch has committed; when the
    commit fails, every job of the batch gets the error and nothing of it was written.
    """

    def __init__(self, store: SqlStore, engine: Engine) -> None:
        self._store = store
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncline-store-writer")
        self._conn: Connection | None = None
        self._txn: Any = None  # the open SQLAlchemy transaction, between BEGIN and COMMIT
        self._queue: list[_Work[Any]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._stopped = False

    def submit(self, fn: Job[T]) -> asyncio.Future[T]:
        """Queue a job (on the event loop's thread); the future resolves after its commit."""
        if self._stopped:
            raise StoreError(f"{self._store.label}: the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Work(fn, future, loop))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return future

    async def aclose(self) -> None:
        """Finish the queued writes, then close the connection and the thread."""
        self._stopped = True
        if self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._discard)
        self._thread.shutdown(wait=True)

    # -- on the event loop --

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if self._txn is None and len(self._queue) == 1:
                # a lone write (a quiet node): all of it in one trip to the thread, where taking the GIL
                # back is cheap because the loop is not busy
                work = self._queue.pop()
                if not work.future.cancelled():
                    _settle([await loop.run_in_executor(self._thread, self._solo, work)])
                continue
            if self._txn is None:
                try:
                    await loop.run_in_executor(self._thread, self._begin)
                except StoreError as exc:  # the database is the problem, not a job: the waiting jobs hear it
                    batch, self._queue = self._queue, []
                    _settle([(work, False, StoreError(str(exc))) for work in batch])
                    continue
            batch = [work for work in self._queue[:MAX_BATCH] if not work.future.cancelled()]
            del self._queue[:MAX_BATCH]
            outcomes = self._run(batch)
            try:
                await loop.run_in_executor(self._thread, self._commit_then_begin)
            except StoreError as exc:
                outcomes = [(work, False, StoreError(str(exc))) for work in batch]
            _settle(outcomes)

    def _run(self, batch: list[_Work[Any]]) -> list[tuple[_Work[Any], bool, Any]]:
        """Each job in its savepoint; after a failure the transaction cannot survive (the database
        rolled it back), every job of the batch gets that error."""
        assert self._conn is not None
        raw: Any = self._conn.connection.driver_connection
        outcomes: list[tuple[_Work[Any], bool, Any]] = []
        for work in batch:
            try:
                raw.execute("SAVEPOINT syncline_job")
            except sqlite3.Error as exc:
                return self._broken(batch, exc)
            try:
                result = work.fn(self._conn)
            except BaseException as exc:
                try:
                    raw.execute("ROLLBACK TO syncline_job")
                    raw.execute("RELEASE syncline_job")
                except sqlite3.Error:
                    return self._broken(batch, exc)
                failure = self._store.error(exc) if isinstance(exc, SQLAlchemyError | sqlite3.Error) else exc
                outcomes.append((work, False, failure))
                continue
            try:
                raw.execute("RELEASE syncline_job")
            except sqlite3.Error as exc:
                return self._broken(batch, exc)
            outcomes.append((work, True, result))
        return outcomes

    def _broken(self, batch: list[_Work[Any]], exc: BaseException) -> list[tuple[_Work[Any], bool, Any]]:
        error = self._store.error(exc) if isinstance(exc, SQLAlchemyError | sqlite3.Error) else StoreError(str(exc))
        self._rollback()
        return [(work, False, StoreError(str(error))) for work in batch]

    # -- on the writer thread (or, for a broken transaction, the loop) --

    def _begin(self) -> None:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(syncline_immediate=True)
            self._txn = self._conn.begin()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            self._txn = None
            self._recover()
            raise self._store.error(exc) from exc

    def _solo(self, work: _Work[Any]) -> tuple[_Work[Any], bool, Any]:
        try:
            self._begin()
        except StoreError as exc:
            return (work, False, exc)
        try:
            result = work.fn(self._conn)  # type: ignore[arg-type]
        except BaseException as exc:
            self._rollback()
            failure = self._store.error(exc) if isinstance(exc, SQLAlchemyError | sqlite3.Error) else exc
            return (work, False, failure)
        try:
            self._commit_then_begin()
        except StoreError as exc:
            return (work, False, exc)
        return (work, True, result)

    def _commit_then_begin(self) -> None:
        """COMMIT the batch; when more jobs are waiting, BEGIN their transaction in the same trip."""
        txn, self._txn = self._txn, None
        try:
            if txn is not None:
                txn.commit()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            self._recover()
            raise self._store.error(exc) from exc
        if self._queue:
            with contextlib.suppress(StoreError):  # else the drain loop begins again and reports it
                self._begin()

    def _rollback(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            try:
                txn.rollback()
            except (SQLAlchemyError, sqlite3.Error):
                self._discard()
                return
        self._recover()

    def _recover(self) -> None:
        """After a failure: keep a healthy connection (rolled back), drop a broken one."""
        conn = self._conn
        if conn is None:
            return
        if conn.invalidated or conn.closed:
            self._discard()
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        except SQLAlchemyError:
            self._discard()

    def _discard(self) -> None:
        self._txn = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except SQLAlchemyError:
                pass


def _pragma_waiting(cursor: Any, pragma: str, patience: float) -> None:
    """Run a PRAGMA, retrying while the database is locked. Switching a new file to WAL needs the
    file to itself, and SQLite answers "database is locked" at once there instead of waiting as the
    busy timeout says, so two stores opening a new file together would otherwise fail."""
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# ---- statements that differ by dialect ----


class _Statements:
    """Inserts that skip duplicates or update, prepared once per dialect."""

    def __init__(self, dialect: str) -> None:
        make = pg.insert if dialect == "postgresql" else sqlite.insert
        self.insert_run: Executable = insert(runs).returning(runs.c.seq)
        self.insert_run_once: Executable = (
            make(runs).on_conflict_do_nothing(index_elements=["flow", "idempotency_key"]).returning(runs.c.seq)
        )
        self.insert_poll_item_once: Executable = (
            make(poll_items)
            .on_conflict_do_nothing(index_elements=["trigger_id", "item_key"])
            .returning(poll_items.c.item_key)
        )
        self.insert_fire_once: Executable = (
            make(schedule_fires)
            .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
            .returning(schedule_fires.c.schedule_id)
        )
        self.insert_state_once: Executable = (
            make(entity_states)
            .on_conflict_do_nothing(index_elements=["machine", "key"])
            .returning(entity_states.c.machine)
        )
        upsert = make(cursors)
        self.upsert_cursor: Executable = upsert.on_conflict_do_update(
            index_elements=["trigger_id"],
            set_={"value": upsert.excluded.value, "updated_at": upsert.excluded.updated_at},
        )


# Hot statements, built once (building one costs about as much as running it on SQLite).
_LOCK_RUN = select(runs.c.seq).where(runs.c.id == bindparam("run_id")).with_for_update(key_share=True)
_LAST_STEP = select(func.coalesce(func.max(steps.c.seq), 0)).where(steps.c.run_id == bindparam("run_id"))
_INSERT_STEP = insert(steps)
_INSERT_EVENTS = insert(events)
_INSERT_KEYS = insert(run_keys)
_EVENTS_LOCK = select(func.pg_advisory_xact_lock(PG_EVENTS_LOCK))
_RUN_BY_ID = select(runs).where(runs.c.id == bindparam("run_id"))
_RUN_BY_KEY = select(runs).where(runs.c.flow == bindparam("flow"), runs.c.idempotency_key == bindparam("key"))
_KEYS_OF = select(run_keys.c.run_id, run_keys.c.name, run_keys.c.value).where(
    run_keys.c.run_id.in_(bindparam("ids", expanding=True))
)
_JOURNAL = select(steps).where(steps.c.run_id == bindparam("run_id")).order_by(steps.c.seq)
_LAST_EVENT = select(func.max(events.c.id))
_EVENTS_AFTER = select(events).where(events.c.id > bindparam("after")).order_by(events.c.id).limit(bindparam("limit"))
_HELD = (runs.c.id == bindparam("b_run_id"), runs.c.lease_owner == bindparam("b_worker"), runs.c.status == "running")
_RENEW = update(runs).where(*_HELD).values(lease_expires=bindparam("b_expires"))
_RELEASE = update(runs).where(*_HELD).values(status="queued", lease_owner=None, lease_expires=None)
# every run of one claim's owner (the status IN lets the claimable partial index find them)
_RELEASE_CLAIM = (
    update(runs)
    .where(
        runs.c.status.in_(statuses(*CLAIMABLE_STATUSES)),
        runs.c.status == literal_column("'running'"),
        runs.c.lease_owner == bindparam("b_worker"),
    )
    .values(status="queued", lease_owner=None, lease_expires=None)
)
_UPDATES: dict[tuple[str, ...], Executable] = {}


def _update_run_statement(names: tuple[str, ...]) -> Executable:
    """`UPDATE runs SET <names> WHERE id = :b_run_id`, one per set of changed fields."""
    stmt = _UPDATES.get(names)
    if stmt is None:
        stmt = update(runs).where(runs.c.id == bindparam("b_run_id")).values({n: bindparam(f"v_{n}") for n in names})
        _UPDATES[names] = stmt
    return stmt


# ---- the work done inside one transaction ----


def _records(conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> list[RunRecord]:
    """Run rows plus their business keys, as records."""
    if not rows:
        return []
    keys: dict[str, dict[str, str]] = {}
    for run_id, name, value in conn.execute(_KEYS_OF, {"ids": [row["id"] for row in rows]}):
        keys.setdefault(run_id, {})[name] = value
    return [run_record(row, keys.get(row["id"], {})) for row in rows]


def _create(conn: Connection, st: _Statements, new: NewRun, row: Row, keys: dict[str, str]) -> CreatedRun:
    raw = _raw_sqlite(conn)
    if raw is not None:
        seq = _raw_insert_run(raw, row)
    elif row["idempotency_key"] is None:
        seq = conn.execute(st.insert_run, row).scalar_one()
    else:
        seq = conn.execute(st.insert_run_once, row).scalar()
    if seq is None:  # the key exists (committed: ON CONFLICT waited for any writer of it)
        existing = conn.execute(_RUN_BY_KEY, {"flow": row["flow"], "key": row["idempotency_key"]}).mappings().one()
        conflict = is_conflict(existing["request_hash"], row["request_hash"])
        return CreatedRun(_records(conn, [existing])[0], created=False, conflict=conflict)
    if keys:
        rows = business_key_rows(row["id"], keys)
        if raw is not None:
            raw.executemany(_RAW_INSERT_KEY, [(r["run_id"], r["name"], r["value"]) for r in rows])
        else:
            conn.execute(_INSERT_KEYS, rows)
    return CreatedRun(created_record(new, row, int(seq), keys), created=True)


_RUN_COLUMNS = tuple(column.name for column in runs.c if column.name != "seq")
_RAW_INSERT_RUN = (
    f"INSERT INTO {runs.name} ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' for _ in _RUN_COLUMNS)})"
    " ON CONFLICT (flow, idempotency_key) DO NOTHING"
)
_RAW_INSERT_KEY = f"INSERT INTO {run_keys.name} (run_id, name, value) VALUES (?, ?, ?)"


_RAW_INSERT_ITEM = (
    f"INSERT INTO {poll_items.name} (trigger_id, item_key, run_id, created_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (trigger_id, item_key) DO NOTHING"
)


def _insert_item_once(conn: Connection, st: _Statements, trigger_id: str, key: str, run_id: str, now: float) -> bool:
    """Record a trigger's item key; False when it was recorded before (on SQLite straight through the
    driver, as runs are: a statement through SQLAlchemy costs several times its work at intake rates)."""
    raw = _raw_sqlite(conn)
    if raw is not None:
        return bool(raw.execute(_RAW_INSERT_ITEM, (trigger_id, key, run_id, now)).rowcount == 1)
    item = {"trigger_id": trigger_id, "item_key": key, "run_id": run_id, "created_at": now}
    return conn.execute(st.insert_poll_item_once, item).first() is not None


def _raw_insert_run(raw: Any, row: Row) -> int | None:
    """SQLite: insert the run, None when its (flow, idempotency key) exists (NULL keys never clash).
    `seq` is the rowid, so no RETURNING (whose row costs the writer another trip for the GIL)."""
    cursor = raw.execute(_RAW_INSERT_RUN, [_plain(row[name]) for name in _RUN_COLUMNS])
    return int(cursor.lastrowid) if cursor.rowcount == 1 else None


def _prepare(new: NewRun, now: float) -> tuple[Row, dict[str, str]]:
    row = new_run_row(new, run_id=new_run_id(now), now=now)
    return row, {str(k): str(v) for k, v in new.business_keys.items()}


def _claim_statement() -> Executable:
    """`UPDATE runs ... RETURNING` that leases the oldest claimable runs (built once: building it
    costs several times running it)."""
    candidate = runs.alias("candidate")
    earlier = runs.alias("earlier")
    now = bindparam("c_now", type_=runs.c.due_at.type)
    pick = (
        select(candidate.c.seq)
        .where(due_clause(candidate, now), not_blocked_clause(candidate, earlier))
        .order_by(candidate.c.seq)
        .limit(bindparam("c_limit", type_=runs.c.seq.type))
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock already
    )
    # the run's journal length (steps are numbered 1, 2, ... per run) and, from it, its new `stalls`
    # (`schema.stalls_after_claim`); every SET expression reads the row as it was before the update
    journaled = (
        select(func.coalesce(func.max(steps.c.seq), 0))
        .where(steps.c.run_id == runs.c.id)
        .correlate(runs)
        .scalar_subquery()
    )
    stalls = case(
        (journaled > runs.c.claim_steps, 0),
        (runs.c.status == literal_column("'running'"), runs.c.stalls + 1),
        else_=runs.c.stalls,
    )
    return (
        update(runs)
        .where(runs.c.seq.in_(pick))
        .values(
            status="running",
            lease_owner=bindparam("c_worker", type_=runs.c.lease_owner.type),
            lease_expires=bindparam("c_expires", type_=runs.c.lease_expires.type),
            started_at=func.coalesce(runs.c.started_at, now),
            stalls=stalls,
            claim_steps=journaled,
        )
        .returning(*runs.c)
    )


_CLAIM = _claim_statement()


def _claim(conn: Connection, worker: str, now: float, lease: float, limit: int) -> list[RunRecord]:
    params = {"c_now": now, "c_limit": limit, "c_worker": worker, "c_expires": now + lease}
    rows = sorted(conn.execute(_CLAIM, params).mappings().all(), key=lambda row: int(row["seq"]))
    return _records(conn, rows)


def _raw_sqlite(conn: Connection) -> Any:
    """The sqlite3 connection under `conn` (same transaction), or None on other databases.

    The hottest writes (a step record, a run update) go straight to sqlite3 there: SQLAlchemy's
    per-statement work costs about 15 times the statement itself and holds the GIL while it does."""
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.driver_connection


def _plain(value: Any) -> Any:
    """What SQLAlchemy's column types would bind: times read back from JSON are Decimals."""
    return float(value) if isinstance(value, Decimal) else value


_RAW_RUN_EXISTS = f"SELECT 1 FROM {runs.name} WHERE id = ?"
_RAW_LAST_STEP = f"SELECT coalesce(max(seq), 0) FROM {steps.name} WHERE run_id = ?"


def _append_steps(
    conn: Connection, run_id: str, entries: Sequence[tuple[Row, list[Row]]], *, run_known: bool = False
) -> list[Row]:
    """Append step rows (each with its event rows) to the run's journal; the rows with their `seq`.
    `run_known`: this transaction has already found the run (else `KeyError` when it does not exist).

    On SQLite every statement hands the GIL back and forth with the event loop's thread, which costs
    more than the statement; so plain steps go in as one multi-row INSERT."""
    raw = _raw_sqlite(conn)
    if raw is not None:
        if not run_known and raw.execute(_RAW_RUN_EXISTS, (run_id,)).fetchone() is None:
            raise KeyError(run_id)
        (last,) = raw.execute(_RAW_LAST_STEP, (run_id,)).fetchone()
    else:  # PostgreSQL: the row lock serialises steps of one run, and the max is read after it is granted
        if conn.execute(_LOCK_RUN, {"run_id": run_id}).first() is None:
            raise KeyError(run_id)
        last = conn.execute(_LAST_STEP, {"run_id": run_id}).scalar_one()
    seq = int(last)
    written: list[Row] = []
    plain: list[list[Any]] = []
    for step, event_rows in entries:
        seq += 1
        step = {**step, "seq": seq}
        written.append(step)
        if raw is not None and not event_rows:
            plain.append([_plain(step[name]) for name in _STEP_COLUMNS])
            continue
        if plain:  # keep the order: what came before this step goes in first
            _raw_insert_steps(raw, plain)
            plain = []
        conn.execute(_INSERT_STEP, step)
        if event_rows:
            if conn.dialect.name == "postgresql":
                conn.execute(_EVENTS_LOCK)  # held to commit: event ids become visible in id order
            conn.execute(_INSERT_EVENTS, event_rows)
    if plain:
        _raw_insert_steps(raw, plain)
    return written


_STEP_COLUMNS = tuple(column.name for column in steps.c)
_STEP_VALUES = f"({', '.join('?' for _ in _STEP_COLUMNS)})"
_ROWS_PER_INSERT = 64


@functools.cache
def _raw_insert_steps_sql(rows: int) -> str:
    return f"INSERT INTO {steps.name} ({', '.join(_STEP_COLUMNS)}) VALUES {', '.join([_STEP_VALUES] * rows)}"


def _raw_insert_steps(raw: Any, rows: list[list[Any]]) -> None:
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        raw.execute(_raw_insert_steps_sql(len(chunk)), [value for row in chunk for value in row])


def _raw_append_plain_steps(raw: Any, run_id: str, rows: Sequence[Row]) -> None:
    """SQLite, steps without events, `seq`s not wanted back: one INSERT that numbers the steps after
    the run's last one itself (SQLite evaluates the rows before inserting any, as the SELECT reads
    the table it inserts into), instead of a SELECT of the last seq and then the INSERT."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        params: list[Any] = []
        for offset, step in enumerate(chunk, start=1):  # after the last step, which includes earlier chunks
            params.append(run_id)
            params.append(offset)
            params.extend(_plain(step[name]) for name in _STEP_COLUMNS if name != "seq")
        raw.execute(_raw_numbered_insert_sql(len(chunk)), params)


@functools.cache
def _raw_numbered_insert_sql(rows: int) -> str:
    others = [name for name in _STEP_COLUMNS if name != "seq"]
    last = f"(SELECT coalesce(max(seq), 0) FROM {steps.name} WHERE run_id = ?)"
    row = f"({last} + ?, {', '.join('?' for _ in others)})"
    return f"INSERT INTO {steps.name} (seq, {', '.join(others)}) VALUES {', '.join([row] * rows)}"


def _record_step(conn: Connection, step: Row, event_rows: list[Row]) -> StepRecord:
    return step_record(_append_steps(conn, step["run_id"], [(step, event_rows)])[0])


def _update_job(run_id: str, changes: RunChanges) -> Job[None] | None:
    """The write of `update_run` (None when nothing changes); `KeyError` for an unknown run."""
    values = change_values(changes)
    if not values:
        return None
    names = tuple(sorted(values))
    stmt = _update_run_statement(names)
    params = {f"v_{name}": values[name] for name in names}
    params["b_run_id"] = run_id
    raw_sql = f"UPDATE {runs.name} SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?"
    raw_params = [_plain(values[n]) for n in names] + [run_id]

    def write(conn: Connection) -> None:
        raw = _raw_sqlite(conn)
        changed = raw.execute(raw_sql, raw_params).rowcount if raw is not None else conn.execute(stmt, params).rowcount
        if changed == 0:
            raise KeyError(run_id)

    return write


def _dead_letter(conn: Connection, run_id: str, reason: str, error_text: str, now: float) -> None:
    flow = conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status="dead_lettered", finished_at=now, lease_owner=None, lease_expires=None)
        .returning(runs.c.flow)
    ).scalar()
    if flow is None:
        raise KeyError(run_id)
    conn.execute(delete(dead_letters).where(dead_letters.c.run_id == run_id))
    conn.execute(
        insert(dead_letters),
        {"run_id": run_id, "flow": flow, "reason": reason, "error": error_text, "created_at": now},
    )


def _accept_poll(
    conn: Connection,
    st: _Statements,
    trigger_id: str,
    prepared: list[tuple[str, NewRun, Row, dict[str, str]]],
    cursor_text: str,
    now: float,
) -> list[CreatedRun]:
    created: list[CreatedRun] = []
    seen: set[str] = set()
    for item_key, new, row, keys in prepared:
        if item_key in seen:
            continue
        seen.add(item_key)
        if not _insert_item_once(conn, st, trigger_id, item_key, row["id"], now):
            continue  # seen by an earlier poll
        result = _create(conn, st, new, row, keys)
        if not result.created:
            conn.execute(
                update(poll_items)
                .where(poll_items.c.trigger_id == trigger_id, poll_items.c.item_key == item_key)
                .values(run_id=result.run.id)
            )
        created.append(result)
    conn.execute(st.upsert_cursor, {"trigger_id": trigger_id, "value": cursor_text, "updated_at": now})
    return created


def _record_fire(
    conn: Connection,
    st: _Statements,
    schedule_id: str,
    fire_time: float,
    new: NewRun,
    row: Row,
    keys: dict[str, str],
    now: float,
) -> CreatedRun | None:
    fire = {"schedule_id": schedule_id, "fire_time": fire_time, "run_id": row["id"], "created_at": now}
    if conn.execute(st.insert_fire_once, fire).first() is None:
        return None
    result = _create(conn, st, new, row, keys)
    if not result.created:
        conn.execute(
            update(schedule_fires)
            .where(schedule_fires.c.schedule_id == schedule_id, schedule_fires.c.fire_time == fire_time)
            .values(run_id=result.run.id)
        )
    return result


def _set_state(
    conn: Connection, st: _Statements, machine: str, key: str, state: str, expected: str | None, run_id: str, now: float
) -> bool:
    values = {"machine": machine, "key": key, "state": state, "run_id": run_id, "updated_at": now}
    if expected is None:
        return conn.execute(st.insert_state_once, values).first() is not None
    changed = conn.execute(
        update(entity_states)
        .where(entity_states.c.machine == machine, entity_states.c.key == key, entity_states.c.state == expected)
        .values(state=state, run_id=run_id, updated_at=now)
    )
    return changed.rowcount == 1


def _list_runs(conn: Connection, f: RunFilter) -> list[RunRecord]:
    query = select(runs).order_by(runs.c.seq.desc()).limit(f.limit)
    if f.before_seq is not None:
        query = query.where(runs.c.seq < f.before_seq)
    if f.flow is not None:
        query = query.where(runs.c.flow == f.flow)
    if f.status is not None:
        query = query.where(runs.c.status.in_(list(f.status)))
    if f.correlation_id is not None:
        query = query.where(runs.c.correlation_id == f.correlation_id)
    if f.parent is not None:  # ix_syncline_runs_parent (only runs with a parent are in it)
        query = query.where(runs.c.parent_run_id == f.parent, runs.c.parent_run_id.is_not(None))
    if f.business_key is not None:
        name, value = f.business_key
        query = query.where(
            runs.c.id.in_(select(run_keys.c.run_id).where(run_keys.c.name == name, run_keys.c.value == value))
        )
    if f.since is not None:
        query = query.where(runs.c.created_at >= f.since)
    if f.until is not None:
        query = query.where(runs.c.created_at < f.until)
    return _records(conn, conn.execute(query).mappings().all())


def _claim_outbox_statement() -> Executable:
    """`UPDATE outbox ... RETURNING` that leases the oldest due messages (PostgreSQL: rows another
    node's claim holds are skipped, so nodes sharing one database never take one message twice)."""
    now = bindparam("o_now", type_=outbox.c.next_attempt_at.type)
    pick = (
        select(outbox.c.seq)
        .where(
            outbox.c.status == literal_column("'pending'"),  # the condition of ix_syncline_outbox_pending
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_expires.is_(None), outbox.c.lease_expires <= now),
        )
        .order_by(outbox.c.seq)
        .limit(bindparam("o_limit", type_=outbox.c.seq.type))
        .with_for_update(skip_locked=True)
    )
    return (
        update(outbox)
        .where(outbox.c.seq.in_(pick))
        .values(
            lease_owner=bindparam("o_owner", type_=outbox.c.lease_owner.type),
            lease_expires=bindparam("o_expires", type_=outbox.c.lease_expires.type),
            attempts=outbox.c.attempts + 1,
        )
        .returning(*outbox.c)
    )


_CLAIM_OUTBOX = _claim_outbox_statement()
_INSERT_OUTBOX = insert(outbox)
_OUTBOX_PENDING = outbox.c.status == literal_column("'pending'")
_OUTBOX_SENT = (
    update(outbox)
    .where(outbox.c.seq == bindparam("o_seq"), _OUTBOX_PENDING)
    .values(
        status="sent",
        sent_at=bindparam("o_now"),
        result=bindparam("o_result"),
        lease_owner=None,
        lease_expires=None,
    )
)
_OUTBOX_FAILED = (
    update(outbox)
    .where(outbox.c.seq == bindparam("o_seq"), _OUTBOX_PENDING, outbox.c.lease_owner == bindparam("o_owner"))
    .values(
        status=bindparam("o_status"),
        last_error=bindparam("o_error"),
        next_attempt_at=bindparam("o_next"),
        lease_owner=None,
        lease_expires=None,
    )
)

_REQUEUE_OUTBOX = (
    update(outbox)
    .where(outbox.c.message_id == bindparam("o_message_id"), outbox.c.status == literal_column("'failed'"))
    .values(status="pending", next_attempt_at=bindparam("o_now"), attempts=0, lease_owner=None, lease_expires=None)
    .returning(*outbox.c)
)
# Sent messages are deleted oldest seq first, a batch at a time, without an index of their own: a
# message sent before the cutoff was created before it, and seq follows creation, so the scan walks the
# primary key only up to the first message created since the cutoff (found by the same walk from the
# oldest message). What it reads is the old rows (the ones to delete and the few failed ones), not the
# retention's worth of recent traffic. A message created out of order (clock skew between nodes) past
# that boundary is deleted by a later purge.
_PURGE_BEFORE = bindparam("o_before", type_=outbox.c.sent_at.type)
_PURGE_BOUNDARY = func.coalesce(
    select(outbox.c.seq).where(outbox.c.created_at >= _PURGE_BEFORE).order_by(outbox.c.seq).limit(1).scalar_subquery(),
    select(func.max(outbox.c.seq) + 1).scalar_subquery(),
)
_PURGE_OUTBOX = delete(outbox).where(
    outbox.c.seq.in_(
        select(outbox.c.seq)
        .where(
            outbox.c.seq < _PURGE_BOUNDARY,
            outbox.c.status == literal_column("'sent'"),
            outbox.c.sent_at < _PURGE_BEFORE,
        )
        .order_by(outbox.c.seq)
        .limit(bindparam("o_limit", type_=outbox.c.seq.type))
        .scalar_subquery()
    )
)


def _outbox_stats(conn: Connection, now: float) -> dict[str, float]:
    pending, oldest = conn.execute(select(func.count(), func.min(outbox.c.created_at)).where(_OUTBOX_PENDING)).one()
    failed = conn.execute(select(func.count()).where(outbox.c.status == literal_column("'failed'"))).scalar_one()
    age = max(0.0, now - float(oldest)) if pending else 0.0
    return {"pending": float(pending), "failed": float(failed), "oldest_age": age}


def _queue_stats(conn: Connection, now: float) -> dict[str, float]:
    since = case(
        (runs.c.status == literal_column("'running'"), runs.c.lease_expires),
        else_=func.coalesce(runs.c.due_at, runs.c.created_at),
    )
    depth, oldest = conn.execute(select(func.count(), func.min(since)).where(due_clause(runs, now))).one()
    running = conn.execute(
        select(func.count()).where(runs.c.status == literal_column("'running'"), runs.c.lease_expires > now)
    ).scalar_one()
    age = max(0.0, now - float(oldest)) if depth else 0.0
    return {"depth": float(depth), "oldest_age": age, "running": float(running)}


# ---- the store ----


class SqlStore:
    """The `Store` protocol on SQLite or PostgreSQL; see the module docstring."""

    def __init__(self, url: str) -> None:
        self._target = parse_url(url)
        self._password = self._target.url.password
        self._st = _Statements(self._target.dialect)
        self._engine: Engine | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._writer: _Writer | None = None
        self._open = False

    @property
    def dialect(self) -> str:
        return self._target.dialect

    @property
    def label(self) -> str:
        """The database, for messages (never with a password)."""
        return self._target.label

    def __repr__(self) -> str:
        return f"SqlStore({self.label!r})"

    def error(self, exc: BaseException) -> StoreError:
        """Translate a SQLAlchemy/driver error into a `StoreError` that names no password or payload."""
        orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        detail = lines[0] if lines else type(orig).__name__
        if self._password:
            detail = detail.replace(str(self._password), "***")
        return StoreError(f"{self.label}: {detail}")

    # ---- lifecycle ----

    def _create_engine(self) -> Engine:
        target = self._target
        if target.dialect == "postgresql":
            return create_engine(
                target.url,
                pool_size=target.pool_size,
                max_overflow=2,
                pool_timeout=30,
                pool_pre_ping=True,
                hide_parameters=True,
                connect_args={"connect_timeout": 5, "application_name": "syncline"},
            )
        engine = create_engine(
            target.url,
            pool_size=4,
            max_overflow=4,
            hide_parameters=True,
            connect_args={"check_same_thread": False},
        )
        pragmas = (
            f"PRAGMA busy_timeout = {target.busy_timeout_ms}",
            "PRAGMA journal_mode = WAL",
            f"PRAGMA synchronous = {target.synchronous.upper()}",
            "PRAGMA foreign_keys = ON",
            *([f"PRAGMA max_page_count = {target.max_page_count}"] if target.max_page_count else []),
        )

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # the driver stays out: we say BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in pragmas:
                _pragma_waiting(cursor, pragma, target.busy_timeout_ms / 1000)
            cursor.close()

        def on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("syncline_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", on_begin)
        return engine

    async def open(self) -> None:
        """Connect, start the threads and apply migrations; `StoreError` when the database is unusable."""
        if self._open:
            return
        if self.dialect == "sqlite":
            folder = Path(str(self._target.url.database)).expanduser().parent
            if not folder.is_dir():
                raise StoreError(f"{self.label}: folder {folder} does not exist")
        self._engine = self._create_engine()
        workers = self._target.pool_size if self.dialect == "postgresql" else 2
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syncline-store")
        if self.dialect == "sqlite":
            self._writer = _Writer(self, self._engine)
        self._open = True
        try:
            await self._write(lambda conn: migrations.apply(conn, now=time.time()))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish the writes already queued, then stop the threads and close every connection."""
        if not self._open:
            return
        self._open = False
        writer, pool, engine = self._writer, self._pool, self._engine
        self._writer = self._pool = self._engine = None
        if writer is not None:
            await writer.aclose()

        def shutdown() -> None:
            if pool is not None:
                pool.shutdown(wait=True)
            if engine is not None:
                engine.dispose()

        await asyncio.to_thread(shutdown)

    # ---- running work off the loop ----

    def _pooled(self, fn: Job[T]) -> T:
        engine = self._engine
        if engine is None:
            raise StoreError(f"{self.label}: the store is closed")
        try:
            with engine.connect() as conn, conn.begin():
                return fn(conn)
        except SQLAlchemyError as exc:
            raise self.error(exc) from exc

    async def _read(self, fn: Job[T]) -> T:
        pool = self._pool
        if not self._open or pool is None:
            raise StoreError(f"{self.label}: the store is not open")
        try:
            future = pool.submit(self._pooled, fn)
        except RuntimeError:  # shut down meanwhile
            raise StoreError(f"{self.label}: the store is closed") from None
        return await asyncio.wrap_future(future)

    async def _write(self, fn: Job[T]) -> T:
        """Run `fn` in a write transaction; returns after the commit."""
        writer = self._writer
        if writer is None:
            return await self._read(fn)  # PostgreSQL: the pool, one transaction per call
        if not self._open:
            raise StoreError(f"{self.label}: the store is not open")
        return await writer.submit(fn)

    # ---- runs ----

    async def create_run(self, new: NewRun, *, now: float) -> CreatedRun:
        row, keys = _prepare(new, now)
        st = self._st
        return await self._write(lambda conn: _create(conn, st, new, row, keys))

    async def get_run(self, run_id: str) -> RunRecord | None:
        def read(conn: Connection) -> RunRecord | None:
            rows = _records(conn, conn.execute(_RUN_BY_ID, {"run_id": run_id}).mappings().all())
            return rows[0] if rows else None

        return await self._read(read)

    async def find_run(self, flow: str, idempotency_key: str) -> RunRecord | None:
        def read(conn: Connection) -> RunRecord | None:
            params = {"flow": flow, "key": idempotency_key}
            rows = _records(conn, conn.execute(_RUN_BY_KEY, params).mappings().all())
            return rows[0] if rows else None

        return await self._read(read)

    async def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        return await self._read(lambda conn: _list_runs(conn, filter))

    async def update_run(self, run_id: str, changes: RunChanges) -> None:
        write = _update_job(run_id, changes)
        if write is not None:
            await self._write(write)

    # ---- leases ----

    async def claim(self, worker: str, *, now: float, lease: float, limit: int = 1) -> list[RunRecord]:
        if limit < 1:
            return []
        return await self._write(lambda conn: _claim(conn, worker, now, lease, limit))

    async def renew(self, run_id: str, worker: str, *, now: float, lease: float) -> bool:
        params = {"b_run_id": run_id, "b_worker": worker, "b_expires": now + lease}
        return await self._write(lambda conn: conn.execute(_RENEW, params).rowcount == 1)

    async def release(self, run_id: str, worker: str) -> None:
        params = {"b_run_id": run_id, "b_worker": worker}
        await self._write(lambda conn: conn.execute(_RELEASE, params).rowcount)

    async def release_claim(self, worker: str) -> int:
        params = {"b_worker": worker}
        return int(await self._write(lambda conn: conn.execute(_RELEASE_CLAIM, params).rowcount))

    # ---- journal ----

    async def record_step(self, record: StepRecord, events: Sequence[EventRecord] = ()) -> StepRecord:
        step = step_row(record, 0)
        event_rows = [event_row(item, default_time=record.finished_at) for item in events]
        return await self._write(lambda conn: _record_step(conn, step, event_rows))

    async def write_journal(
        self,
        run_id: str,
        entries: Sequence[JournalEntry],
        changes: RunChanges | None = None,
        *,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        rows = journal_rows(run_id, entries)
        messages = outbox_rows(run_id, outbox)
        update_job = _update_job(run_id, changes) if changes else None

        plain = not any(events for _step, events in rows)

        def write(conn: Connection) -> None:
            # the update first: finding the run, it spares the steps' existence check
            if update_job is not None:
                update_job(conn)
            raw = _raw_sqlite(conn)
            if rows and raw is not None and plain and update_job is not None:
                _raw_append_plain_steps(raw, run_id, [step for step, _events in rows])
            elif rows:
                _append_steps(conn, run_id, rows, run_known=update_job is not None)
            elif update_job is None and conn.execute(_RUN_BY_ID, {"run_id": run_id}).first() is None:
                raise KeyError(run_id)
            if messages:  # the run exists (checked above): in the same transaction as its steps
                conn.execute(_INSERT_OUTBOX, messages)

        await self._write(write)

    async def journal(self, run_id: str) -> list[StepRecord]:
        params = {"run_id": run_id}
        return await self._read(lambda conn: [step_record(row) for row in conn.execute(_JOURNAL, params).mappings()])

    # ---- outbox ----

    async def claim_outbox(self, owner: str, *, now: float, lease: float, limit: int = 32) -> list[OutboxRecord]:
        if limit < 1:
            return []
        params = {"o_now": now, "o_limit": limit, "o_owner": owner, "o_expires": now + lease}

        def write(conn: Connection) -> list[OutboxRecord]:
            rows = conn.execute(_CLAIM_OUTBOX, params).mappings().all()
            return sorted((outbox_record(row) for row in rows), key=lambda record: record.seq)

        return await self._write(write)

    async def outbox_sent(self, seq: int, *, now: float, result: Any = None) -> bool:
        params = {"o_seq": seq, "o_now": now, "o_result": dumps(result)}
        return await self._write(lambda conn: conn.execute(_OUTBOX_SENT, params).rowcount == 1)

    async def outbox_failed(self, seq: int, owner: str, error: str, *, now: float, retry_at: float | None) -> bool:
        params = {
            "o_seq": seq,
            "o_owner": owner,
            "o_error": error,
            "o_status": "pending" if retry_at is not None else "failed",
            "o_next": retry_at if retry_at is not None else now,
        }
        return await self._write(lambda conn: conn.execute(_OUTBOX_FAILED, params).rowcount == 1)

    async def list_outbox(
        self,
        *,
        run_id: str | None = None,
        status: OutboxStatus | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[OutboxRecord]:
        query = select(outbox).order_by(outbox.c.seq).limit(limit)
        if run_id is not None:
            query = query.where(outbox.c.run_id == run_id)
        if status is not None:  # spelled out, so the partial index of failed messages serves it
            query = query.where(outbox.c.status == statuses(status)[0])
        if after is not None:
            query = query.where(outbox.c.seq > after)
        return await self._read(lambda conn: [outbox_record(row) for row in conn.execute(query).mappings()])

    async def requeue_outbox(self, message_id: str, *, now: float) -> list[OutboxRecord]:
        params = {"o_message_id": message_id, "o_now": now}

        def write(conn: Connection) -> list[OutboxRecord]:
            rows = conn.execute(_REQUEUE_OUTBOX, params).mappings().all()
            return sorted((outbox_record(row) for row in rows), key=lambda record: record.seq)

        return await self._write(write)

    async def purge_outbox(self, *, sent_before: float, limit: int = 1000) -> int:
        if limit < 1:
            return 0
        params = {"o_before": sent_before, "o_limit": limit}
        return await self._write(lambda conn: int(conn.execute(_PURGE_OUTBOX, params).rowcount))

    async def outbox_stats(self, *, now: float) -> dict[str, float]:
        return await self._read(lambda conn: _outbox_stats(conn, now))

    # ---- dead letters ----

    async def dead_letter(self, run_id: str, reason: str, error: dict[str, Any] | None, *, now: float) -> None:
        error_text = dumps(error)
        await self._write(lambda conn: _dead_letter(conn, run_id, reason, error_text, now))

    async def list_dead_letters(
        self, *, flow: str | None = None, include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        query = select(dead_letters).order_by(dead_letters.c.created_at.desc()).limit(limit)
        if flow is not None:
            query = query.where(dead_letters.c.flow == flow)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        return await self._read(lambda conn: [dead_letter_record(row) for row in conn.execute(query).mappings()])

    async def mark_replayed(self, run_id: str, replay_run_id: str, *, now: float) -> None:
        stmt = (
            update(dead_letters)
            .where(dead_letters.c.run_id == run_id)
            .values(replayed_at=now, replay_run_id=replay_run_id)
        )

        def write(conn: Connection) -> None:
            if conn.execute(stmt).rowcount == 0:
                raise KeyError(run_id)

        await self._write(write)

    # ---- events ----

    async def events_after(self, after_id: int, *, limit: int = 100) -> list[EventRecord]:
        params = {"after": after_id, "limit": limit}
        return await self._read(
            lambda conn: [event_record(row) for row in conn.execute(_EVENTS_AFTER, params).mappings()]
        )

    async def last_event_id(self) -> int:
        return await self._read(lambda conn: int(conn.execute(_LAST_EVENT).scalar() or 0))

    # ---- trigger state ----

    async def get_cursor(self, trigger_id: str) -> Any:
        query = select(cursors.c.value).where(cursors.c.trigger_id == trigger_id)
        return await self._read(lambda conn: decode_cursor(conn.execute(query).scalar()))

    async def accept_poll(
        self, trigger_id: str, runs: Sequence[tuple[str, NewRun]], cursor: Any, *, now: float
    ) -> list[CreatedRun]:
        prepared = [(str(item_key), new, *_prepare(new, now)) for item_key, new in runs]
        cursor_text = dumps(cursor)
        st = self._st
        return await self._write(lambda conn: _accept_poll(conn, st, trigger_id, prepared, cursor_text, now))

    async def record_fire(self, schedule_id: str, fire_time: float, run: NewRun, *, now: float) -> CreatedRun | None:
        row, keys = _prepare(run, now)
        st = self._st
        return await self._write(lambda conn: _record_fire(conn, st, schedule_id, fire_time, run, row, keys, now))

    # ---- entity state ----

    async def get_state(self, machine: str, key: str) -> str | None:
        query = select(entity_states.c.state).where(entity_states.c.machine == machine, entity_states.c.key == key)
        return await self._read(lambda conn: conn.execute(query).scalar())

    async def set_state(
        self, machine: str, key: str, state: str, *, expected: str | None, run_id: str, now: float
    ) -> bool:
        st = self._st
        return await self._write(lambda conn: _set_state(conn, st, machine, key, state, expected, run_id, now))

    # ---- health ----

    async def ping(self) -> bool:
        try:
            return bool(await self._read(lambda conn: conn.execute(select(1)).scalar() == 1))
        except StoreError:
            return False

    async def queue_stats(self, *, now: float) -> dict[str, float]:
        return await self._read(lambda conn: _queue_stats(conn, now))

    async def pending_counts(self) -> dict[tuple[str, str], int]:
        parked = (runs.c.status == "waiting") & runs.c.meta.contains(PARKED_MARK, autoescape=True)
        status = case((parked, literal_column("'parked'")), else_=runs.c.status)
        query = (
            select(runs.c.flow, status, func.count())
            .where(runs.c.status.in_(PENDING_STATUSES))
            .group_by(runs.c.flow, status)
        )
        return await self._read(lambda conn: {(f, s): int(n) for f, s, n in conn.execute(query)})

    async def dead_letter_depth(self) -> dict[str, int]:
        query = (
            select(dead_letters.c.flow, func.count())
            .where(dead_letters.c.replayed_at.is_(None))
            .group_by(dead_letters.c.flow)
        )
        return await self._read(lambda conn: {f: int(n) for f, n in conn.execute(query)})

    async def run_counts(self, *, since: float, bucket: float) -> dict[tuple[str, str, int], int]:
        # created_at >= since, so the quotient is not negative: SQLite's CAST truncates it (= floor),
        # PostgreSQL's rounds, so it is floored first there
        quotient = (runs.c.created_at - bindparam("b_since")) / bindparam("b_bucket")
        slot = cast(func.floor(quotient) if self.dialect == "postgresql" else quotient, Integer)
        query = (
            select(runs.c.flow, runs.c.status, slot, func.count())
            .where(runs.c.created_at >= bindparam("b_since"))
            .group_by(runs.c.flow, runs.c.status, slot)
        )
        params = {"b_since": since, "b_bucket": bucket}
        return await self._read(lambda conn: {(f, s, int(b)): int(n) for f, s, b, n in conn.execute(query, params)})
