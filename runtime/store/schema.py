"""Tables of the SQL stores (SQLAlchemy Core, shared by SQLite and PostgreSQL) and row ⇄ record conversion.

Layout (every name starts with `syncline_` so a shared PostgreSQL database stays tidy):

    schema_version   one row per applied migration
    runs             one row per run; `seq` (autoincrement primary key) is the acceptance order,
                     `id` the public id; JSON columns are text written with `runtime.expr.dumps`;
                     `stalls`/`claim_steps` count claims that ended without progress (poison runs)
    run_keys         business keys of a run, (run_id, name) → value, indexed by (name, value)
    steps            the journal: (run_id, seq) → one step record
    events           internal events emitted by steps, `id` grows in commit order
    dead_letters     one row per dead-lettered run
    poll_items       item keys a poll trigger has accepted, (trigger_id, item_key)
    cursors          the last cursor of each poll trigger
    schedule_fires   (schedule_id, fire_time) of every recorded schedule fire
    entity_states    state-machine state per (machine, key)
    outbox           messages of `effect: publish` calls, written with their step's journal entry
                     and sent after (migration 3); `seq` is the commit order

The conversion helpers turn `NewRun`/`StepRecord`/... into column values and rows back into records;
the memory store keeps the same rows, so every store encodes JSON the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    and_,
    exists,
    literal_column,
    not_,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from runtime.expr.jsonvalues import dumps, loads
from runtime.store.base import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    DeadLetter,
    EventRecord,
    JournalEntry,
    NewRun,
    OutboxMessage,
    OutboxRecord,
    RunChanges,
    RunRecord,
    StepRecord,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An integer primary key that is SQLite's rowid (INTEGER) and a BIGINT identity on PostgreSQL.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")
_FINALS = tuple(sorted(FINAL_STATUSES))

schema_version = Table(
    "syncline_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", Double, nullable=False),
)

runs = Table(
    "syncline_runs",
    metadata,
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("flow", Text, nullable=False),
    Column("flow_version", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("correlation_id", Text),
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    Column("ordering_key", Text),
    Column("attempt", Integer, nullable=False),
    Column("due_at", Double),
    Column("lease_owner", Text),
    Column("lease_expires", Double),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("output", Text),
    Column("error", Text),
    Column("parent_run_id", Text),
    Column("replay_of", Text),
    Column("replay_from_step", Text),
    Column("meta", Text, nullable=False),
    # poison protection (migration 2): claims in a row that ended without a new journaled step, and
    # the journal's length at the last claim (see `stalls_after_claim`)
    Column("stalls", Integer, nullable=False, server_default="0"),
    Column("claim_steps", Integer, nullable=False, server_default="0"),
    # NULL keys never collide (SQLite and PostgreSQL both treat NULLs as distinct here).
    UniqueConstraint("flow", "idempotency_key"),
    Index(None, "flow", "seq"),
    Index(None, "status", "seq"),
    Index(None, "correlation_id"),
    sqlite_autoincrement=True,  # seq never reused, even after the newest run is deleted
)

# Partial indexes over the few runs still in play, so claiming stays fast however long the history.
_claimable_where = runs.c.status.in_(CLAIMABLE_STATUSES)
_active_key_where = and_(runs.c.ordering_key.is_not(None), runs.c.status.not_in(_FINALS))
Index(
    "ix_syncline_runs_claimable",
    runs.c.seq,
    sqlite_where=_claimable_where,
    postgresql_where=_claimable_where,
)
Index(
    "ix_syncline_runs_active_key",
    runs.c.ordering_key,
    runs.c.seq,
    sqlite_where=_active_key_where,
    postgresql_where=_active_key_where,
)

# A run's children (runs started by its events, `parent_run_id`), newest first (migration 4): only the
# runs that have a parent are in it.
_has_parent_where = runs.c.parent_run_id.is_not(None)
runs_by_parent = Index(
    "ix_syncline_runs_parent",
    runs.c.parent_run_id,
    runs.c.seq,
    sqlite_where=_has_parent_where,
    postgresql_where=_has_parent_where,
)

run_keys = Table(
    "syncline_run_keys",
    metadata,
    Column("run_id", Text, ForeignKey("syncline_runs.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "name"),
    Index(None, "name", "value", "run_id"),
)

steps = Table(
    "syncline_steps",
    metadata,
    Column("run_id", Text, ForeignKey("syncline_runs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double, nullable=False),
    PrimaryKeyConstraint("run_id", "seq"),
)

events = Table(
    "syncline_events",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("key", Text),
    Column("source_run_id", Text),
    Column("source_step", Text),
    Column("created_at", Double, nullable=False),
    sqlite_autoincrement=True,
)

dead_letters = Table(
    "syncline_dead_letters",
    metadata,
    Column("run_id", Text, ForeignKey("syncline_runs.id"), primary_key=True),
    Column("flow", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("replayed_at", Double),
    Column("replay_run_id", Text),
    Index(None, "created_at"),
)

poll_items = Table(
    "syncline_poll_items",
    metadata,
    Column("trigger_id", Text, nullable=False),
    Column("item_key", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("trigger_id", "item_key"),
)

cursors = Table(
    "syncline_cursors",
    metadata,
    Column("trigger_id", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

schedule_fires = Table(
    "syncline_schedule_fires",
    metadata,
    Column("schedule_id", Text, nullable=False),
    Column("fire_time", Double, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("schedule_id", "fire_time"),
)

entity_states = Table(
    "syncline_entity_states",
    metadata,
    Column("machine", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
    PrimaryKeyConstraint("machine", "key"),
)

outbox = Table(
    "syncline_outbox",
    metadata,
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", Text, ForeignKey("syncline_runs.id"), nullable=False),
    Column("step_key", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending | sent | failed
    Column("created_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("lease_owner", Text),
    Column("lease_expires", Double),
    Column("sent_at", Double),
    Column("last_error", Text),
    Column("result", Text),
    Index(None, "run_id"),
    sqlite_autoincrement=True,
)
# Partial indexes over the few messages not sent, so claims and gauges stay fast however many were sent.
_outbox_pending = outbox.c.status == literal_column("'pending'")
_outbox_failed = outbox.c.status == literal_column("'failed'")
Index(
    "ix_syncline_outbox_pending",
    outbox.c.next_attempt_at,
    outbox.c.seq,
    sqlite_where=_outbox_pending,
    postgresql_where=_outbox_pending,
)
Index("ix_syncline_outbox_failed", outbox.c.seq, sqlite_where=_outbox_failed, postgresql_where=_outbox_failed)


# ---- claim predicate (SQL) ----


def statuses(*names: str) -> list[ColumnElement[Any]]:
    """Status names as SQL literals, not parameters: the planners (SQLite always, PostgreSQL with a
    generic plan) only use a partial index when the query spells out the index's own condition."""
    assert all(name.isidentifier() for name in names)
    return [literal_column(f"'{name}'") for name in names]


def due_clause(table: FromClause, now: float | ColumnElement[Any]) -> ColumnElement[bool]:
    """`table`'s run is due at `now` (the rule in `runtime.store.base`), ordering keys aside."""
    c = table.c
    not_later = or_(c.due_at.is_(None), c.due_at <= now)
    return and_(
        c.status.in_(statuses(*CLAIMABLE_STATUSES)),  # the condition of ix_syncline_runs_claimable
        or_(
            and_(c.status.in_(statuses("queued", "retrying")), not_later),
            and_(c.status == literal_column("'waiting'"), c.due_at <= now),
            and_(c.status == literal_column("'running'"), c.lease_expires <= now),
        ),
    )


def not_blocked_clause(table: FromClause, earlier: FromClause) -> ColumnElement[bool]:
    """No earlier run of `table`'s ordering key is unfinished (`earlier` is another alias of runs)."""
    blocker = exists().where(
        earlier.c.ordering_key == table.c.ordering_key,
        earlier.c.ordering_key.is_not(None),  # with the next line: ix_syncline_runs_active_key
        earlier.c.status.not_in(statuses(*_FINALS)),
        earlier.c.seq < table.c.seq,
    )
    return or_(table.c.ordering_key.is_(None), not_(blocker))


# ---- rows ⇄ records ----

_RUN_JSON = frozenset({"input", "output", "error", "meta"})
RUN_CHANGE_FIELDS: frozenset[str] = frozenset(RunChanges.__optional_keys__)


def is_due(row: Mapping[Any, Any], now: float) -> bool:
    """The Python twin of `due_clause`, for the memory store."""
    status = row["status"]
    due_at = row["due_at"]
    if status in ("queued", "retrying"):
        return due_at is None or due_at <= now
    if status == "waiting":
        return due_at is not None and due_at <= now
    if status == "running":
        return row["lease_expires"] is not None and row["lease_expires"] <= now
    return False


def stalls_after_claim(row: Mapping[Any, Any], journaled: int) -> int:
    """The Python twin of the claim's `stalls` update: a run's count of claims in a row that ended
    without progress, as it is claimed again with `journaled` steps in its journal. A step journaled
    since the last claim resets it; a run taken back from an expired lease (its worker crashed or
    lost the lease) without one adds one; other claims (queued, retrying, waiting) keep it."""
    if journaled > int(row["claim_steps"]):
        return 0
    if row["status"] == "running":
        return int(row["stalls"]) + 1
    return int(row["stalls"])


def ready_since(row: Mapping[Any, Any]) -> float:
    """When a due run became due: its lease's end, its `due_at`, or its creation."""
    if row["status"] == "running":
        return float(row["lease_expires"])
    due_at = row["due_at"]
    return float(due_at if due_at is not None else row["created_at"])


def new_run_row(new: NewRun, *, run_id: str, now: float) -> dict[str, Any]:
    """Column values of a new run (everything but `seq`); raises for values that are not JSON."""
    return {
        "id": run_id,
        "flow": new.flow,
        "flow_version": new.flow_version,
        "trigger": new.trigger,
        "status": new.status,
        "input": dumps(new.input),
        "headers": dumps(dict(new.headers)),
        "correlation_id": new.correlation_id,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
        "ordering_key": new.ordering_key,
        "attempt": 1,  # the attempt the run is on; the engine raises it when it schedules a retry
        "due_at": new.due_at,
        "lease_owner": new.lease_owner,
        "lease_expires": new.lease_expires,
        "created_at": now,
        "started_at": now if new.lease_owner is not None else None,
        "finished_at": None,
        "output": None,
        "error": None,
        "parent_run_id": new.parent_run_id,
        "replay_of": new.replay_of,
        "replay_from_step": new.replay_from_step,
        "meta": dumps(dict(new.meta)),
        "stalls": 0,
        "claim_steps": 0,
    }


def business_key_rows(run_id: str, keys: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"run_id": run_id, "name": str(name), "value": str(value)} for name, value in keys.items()]


def change_values(changes: RunChanges) -> dict[str, Any]:
    """Column values for `update_run`; `ValueError` names a field `update_run` may not change."""
    unknown = sorted(set(changes) - RUN_CHANGE_FIELDS)
    if unknown:
        raise ValueError(f"update_run cannot change {', '.join(unknown)}")
    raw: Mapping[Any, Any] = changes
    return {name: dumps(value) if name in _RUN_JSON else value for name, value in raw.items()}


def _json(text: str | None) -> Any:
    return None if text is None else loads(text)


def run_record(row: Mapping[Any, Any], business_keys: Mapping[str, str]) -> RunRecord:
    return RunRecord(
        id=row["id"],
        seq=int(row["seq"]),
        flow=row["flow"],
        flow_version=row["flow_version"],
        trigger=row["trigger"],
        status=row["status"],
        input=_json(row["input"]),
        headers=_json(row["headers"]),
        correlation_id=row["correlation_id"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        ordering_key=row["ordering_key"],
        business_keys=dict(business_keys),
        attempt=int(row["attempt"]),
        due_at=row["due_at"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        output=_json(row["output"]),
        error=_json(row["error"]),
        parent_run_id=row["parent_run_id"],
        replay_of=row["replay_of"],
        replay_from_step=row["replay_from_step"],
        meta=_json(row["meta"]),
        stalls=int(row["stalls"]),
        claim_steps=int(row["claim_steps"]),
    )


def created_record(new: NewRun, row: Mapping[str, Any], seq: int, business_keys: Mapping[str, str]) -> RunRecord:
    """The record of a run just inserted from `new` as `row`, without decoding what was just encoded."""
    return RunRecord(
        **{name: row[name] for name in _CREATED_FROM_ROW},
        seq=seq,
        input=new.input,
        headers=dict(new.headers),
        business_keys=dict(business_keys),
        output=None,
        error=None,
        meta=dict(new.meta),
    )


_CREATED_FROM_ROW = (
    "id",
    "flow",
    "flow_version",
    "trigger",
    "status",
    "correlation_id",
    "idempotency_key",
    "request_hash",
    "ordering_key",
    "attempt",
    "due_at",
    "lease_owner",
    "lease_expires",
    "created_at",
    "started_at",
    "finished_at",
    "parent_run_id",
    "replay_of",
    "replay_from_step",
    "stalls",
)


def journal_rows(run_id: str, entries: Sequence[JournalEntry]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """`write_journal`'s entries as (step row, event rows), `seq` still 0; `ValueError` for a step of
    another run (write_journal takes the records of one run only)."""
    rows = []
    for record, events in entries:
        if record.run_id != run_id:
            raise ValueError(f"write_journal({run_id!r}) got a step of run {record.run_id!r}")
        rows.append((step_row(record, 0), [event_row(event, default_time=record.finished_at) for event in events]))
    return rows


def step_row(record: StepRecord, seq: int) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "seq": seq,
        "step_key": record.step_key,
        "kind": record.kind,
        "status": record.status,
        "attempts": record.attempts,
        "input": dumps(record.input),
        "output": dumps(record.output),
        "error": dumps(record.error),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


def step_record(row: Mapping[Any, Any]) -> StepRecord:
    return StepRecord(
        run_id=row["run_id"],
        step_key=row["step_key"],
        kind=row["kind"],
        status=row["status"],
        attempts=int(row["attempts"]),
        input=_json(row["input"]),
        output=_json(row["output"]),
        error=_json(row["error"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        seq=int(row["seq"]),
    )


def event_row(event: EventRecord, *, default_time: float) -> dict[str, Any]:
    """Column values of an event (everything but `id`); `created_at` 0 becomes `default_time`."""
    return {
        "name": event.name,
        "data": dumps(event.data),
        "key": event.key,
        "source_run_id": event.source_run_id,
        "source_step": event.source_step,
        "created_at": event.created_at or default_time,
    }


def event_record(row: Mapping[Any, Any]) -> EventRecord:
    return EventRecord(
        name=row["name"],
        data=_json(row["data"]),
        key=row["key"],
        source_run_id=row["source_run_id"],
        source_step=row["source_step"],
        id=int(row["id"]),
        created_at=row["created_at"],
    )


def dead_letter_record(row: Mapping[Any, Any]) -> DeadLetter:
    return DeadLetter(
        run_id=row["run_id"],
        flow=row["flow"],
        reason=row["reason"],
        error=_json(row["error"]),
        created_at=row["created_at"],
        replayed_at=row["replayed_at"],
        replay_run_id=row["replay_run_id"],
    )


def decode_cursor(text: str | None) -> Any:
    return _json(text)


def is_conflict(stored_hash: str | None, new_hash: str | None) -> bool:
    """Same idempotency key, different request: only when the new create carries a hash."""
    return new_hash is not None and new_hash != stored_hash


def outbox_rows(run_id: str, messages: Sequence[OutboxMessage]) -> list[dict[str, Any]]:
    """Column values of new outbox messages (everything but `seq`): pending, due at `created_at`;
    `ValueError` for a message of another run, or a request that is not JSON."""
    rows = []
    for message in messages:
        if message.run_id != run_id:
            raise ValueError(f"write_journal({run_id!r}) got an outbox message of run {message.run_id!r}")
        rows.append(
            {
                "run_id": message.run_id,
                "step_key": message.step_key,
                "operation": message.operation,
                "message_id": message.message_id,
                "request": dumps(message.request),
                "status": "pending",
                "created_at": message.created_at,
                "attempts": 0,
                "next_attempt_at": message.created_at,
                "lease_owner": None,
                "lease_expires": None,
                "sent_at": None,
                "last_error": None,
                "result": None,
            }
        )
    return rows


def outbox_record(row: Mapping[Any, Any]) -> OutboxRecord:
    return OutboxRecord(
        seq=int(row["seq"]),
        run_id=row["run_id"],
        step_key=row["step_key"],
        operation=row["operation"],
        message_id=row["message_id"],
        request=_json(row["request"]),
        status=row["status"],
        created_at=row["created_at"],
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        lease_owner=row["lease_owner"],
        lease_expires=row["lease_expires"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
        result=_json(row["result"]),
    )


def outbox_due(row: Mapping[Any, Any], now: float) -> bool:
    """A message `claim_outbox` may take at `now` (the memory store's twin of the SQL claim)."""
    return (
        row["status"] == "pending"
        and row["next_attempt_at"] <= now
        and (row["lease_expires"] is None or row["lease_expires"] <= now)
    )
