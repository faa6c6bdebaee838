"""`MemoryStore`: the `Store` protocol in process memory, for unit tests and `memory://`.

It keeps the same rows as the SQL stores (JSON columns as text written by `runtime.expr.dumps`), so
records come back as fresh copies with exact decimals, and values that are not JSON fail exactly as
they do on SQLite. Every method does its work under one lock without awaiting in between, so it is
safe for any number of tasks (and threads); each method is one atomic step, like a transaction.
Nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from runtime.expr.jsonvalues import dumps
from runtime.store.base import (
    FINAL_STATUSES,
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
    change_values,
    dead_letter_record,
    decode_cursor,
    event_record,
    event_row,
    is_conflict,
    is_due,
    journal_rows,
    new_run_row,
    outbox_due,
    outbox_record,
    outbox_rows,
    ready_since,
    run_record,
    stalls_after_claim,
    step_record,
    step_row,
)

Row = dict[str, Any]


class MemoryStore:
    """Runs and their state in dictionaries; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._open = False
        self._seq = 0
        self._event_id = 0
        self._runs: dict[str, Row] = {}  # id → row, in seq order (insertion order)
        self._keys: dict[str, dict[str, str]] = {}
        self._by_idempotency: dict[tuple[str, str], str] = {}
        self._steps: dict[str, list[Row]] = {}
        self._events: list[Row] = []
        self._dead: dict[str, Row] = {}
        self._poll_items: dict[tuple[str, str], str] = {}
        self._cursors: dict[str, str] = {}
        self._fires: dict[tuple[str, float], str] = {}
        self._states: dict[tuple[str, str], Row] = {}
        self._outbox: dict[int, Row] = {}  # seq → row, in seq order
        self._outbox_seq = 0

    def __repr__(self) -> str:
        return "MemoryStore()"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if not self._open:
                raise StoreError("the store is not open")
            yield

    async def open(self) -> None:
        with self._lock:
            self._open = True

    async def close(self) -> None:
        with self._lock:
            self._open = False

    # ---- runs ----

    def _record(self, row: Row) -> RunRecord:
        return run_record(row, self._keys.get(row["id"], {}))

    def _create(self, row: Row, keys: Mapping[str, str]) -> CreatedRun:
        """Insert a prepared run row unless its idempotency key exists (caller holds the lock)."""
        key = row["idempotency_key"]
        if key is not None:
            existing_id = self._by_idempotency.get((row["flow"], key))
            if existing_id is not None:
                existing = self._runs[existing_id]
                conflict = is_conflict(existing["request_hash"], row["request_hash"])
                return CreatedRun(self._record(existing), created=False, conflict=conflict)
            self._by_idempotency[(row["flow"], key)] = row["id"]
        self._seq += 1
        row["seq"] = self._seq
        self._runs[row["id"]] = row
        if keys:
            self._keys[row["id"]] = dict(keys)
        return CreatedRun(self._record(row), created=True)

    @staticmethod
    def _prepare(new: NewRun, now: float) -> tuple[Row, dict[str, str]]:
        row = new_run_row(new, run_id=new_run_id(now), now=now)
        return row, {str(k): str(v) for k, v in new.business_keys.items()}

    async def create_run(self, new: NewRun, *, now: float) -> CreatedRun:
        row, keys = self._prepare(new, now)
        with self._locked():
            return self._create(row, keys)

    async def get_run(self, run_id: str) -> RunRecord | None:
        with self._locked():
            row = self._runs.get(run_id)
            return None if row is None else self._record(row)

    async def find_run(self, flow: str, idempotency_key: str) -> RunRecord | None:
        with self._locked():
            run_id = self._by_idempotency.get((flow, idempotency_key))
            return None if run_id is None else self._record(self._runs[run_id])

    async def list_runs(self, filter: RunFilter) -> list[RunRecord]:
        statuses = None if filter.status is None else set(filter.status)
        with self._locked():
            found: list[RunRecord] = []
            for row in reversed(self._runs.values()):
                if len(found) >= filter.limit:
                    break
                if filter.before_seq is not None and row["seq"] >= filter.before_seq:
                    continue
                if filter.flow is not None and row["flow"] != filter.flow:
                    continue
                if statuses is not None and row["status"] not in statuses:
                    continue
                if filter.correlation_id is not None and row["correlation_id"] != filter.correlation_id:
                    continue
                if filter.parent is not None and row["parent_run_id"] != filter.parent:
                    continue
                if filter.business_key is not None:
                    name, value = filter.business_key
                    if self._keys.get(row["id"], {}).get(name) != value:
                        continue
                if filter.since is not None and row["created_at"] < filter.since:
                    continue
                if filter.until is not None and row["created_at"] >= filter.until:
                    continue
                found.append(self._record(row))
            return found

    async def update_run(self, run_id: str, changes: RunChanges) -> None:
        values = change_values(changes)
        with self._locked():
            row = self._runs.get(run_id)
            if row is None:
                raise KeyError(run_id)
            row.update(values)

    # ---- leases ----

    async def claim(self, worker: str, *, now: float, lease: float, limit: int = 1) -> list[RunRecord]:
        with self._locked():
            claimed: list[RunRecord] = []
            blocked: set[str] = set()  # ordering keys with an earlier unfinished run
            for row in self._runs.values():
                if len(claimed) >= limit:
                    break
                if row["status"] in FINAL_STATUSES:
                    continue
                key = row["ordering_key"]
                if key is not None:
                    if key in blocked:
                        continue
                    blocked.add(key)
                if is_due(row, now):
                    journaled = len(self._steps.get(row["id"], ()))
                    row["stalls"] = stalls_after_claim(row, journaled)
                    row["claim_steps"] = journaled
                    row["status"] = "running"
                    row["lease_owner"] = worker
                    row["lease_expires"] = now + lease
                    if row["started_at"] is None:
                        row["started_at"] = now
                    claimed.append(self._record(row))
            return claimed

    async def renew(self, run_id: str, worker: str, *, now: float, lease: float) -> bool:
        with self._locked():
            row = self._runs.get(run_id)
            if row is None or row["status"] != "running" or row["lease_owner"] != worker:
                return False
            row["lease_expires"] = now + lease
            return True

    async def release(self, run_id: str, worker: str) -> None:
        with self._locked():
            row = self._runs.get(run_id)
            if row is not None and row["status"] == "running" and row["lease_owner"] == worker:
                row.update(status="queued", lease_owner=None, lease_expires=None)

    async def release_claim(self, worker: str) -> int:
        with self._locked():
            taken = [r for r in self._runs.values() if r["status"] == "running" and r["lease_owner"] == worker]
            for row in taken:
                row.update(status="queued", lease_owner=None, lease_expires=None)
            return len(taken)

    # ---- journal ----

    async def record_step(self, record: StepRecord, events: Sequence[EventRecord] = ()) -> StepRecord:
        event_rows = [event_row(event, default_time=record.finished_at) for event in events]
        row = step_row(record, 0)
        with self._locked():
            if record.run_id not in self._runs:
                raise KeyError(record.run_id)
            self._append(record.run_id, row, event_rows)
            return step_record(row)

    def _append(self, run_id: str, step: Row, event_rows: list[Row]) -> None:
        """Under the lock: the step next in its run's journal, its events next in the event log."""
        journal = self._steps.setdefault(run_id, [])
        step["seq"] = len(journal) + 1
        journal.append(step)
        for event in event_rows:
            self._event_id += 1
            event["id"] = self._event_id
            self._events.append(event)

    async def write_journal(
        self,
        run_id: str,
        entries: Sequence[JournalEntry],
        changes: RunChanges | None = None,
        *,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        prepared = journal_rows(run_id, entries)
        messages = outbox_rows(run_id, outbox)
        values = change_values(changes) if changes else {}
        with self._locked():
            row = self._runs.get(run_id)
            if row is None:
                raise KeyError(run_id)
            for step, event_rows in prepared:
                self._append(run_id, step, event_rows)
            for message in messages:
                self._outbox_seq += 1
                message["seq"] = self._outbox_seq
                self._outbox[self._outbox_seq] = message
            row.update(values)

    # ---- outbox ----

    async def claim_outbox(self, owner: str, *, now: float, lease: float, limit: int = 32) -> list[OutboxRecord]:
        with self._locked():
            claimed: list[OutboxRecord] = []
            for row in self._outbox.values():
                if len(claimed) >= limit:
                    break
                if outbox_due(row, now):
                    row.update(lease_owner=owner, lease_expires=now + lease, attempts=row["attempts"] + 1)
                    claimed.append(outbox_record(row))
            return claimed

    async def outbox_sent(self, seq: int, *, now: float, result: Any = None) -> bool:
        text = dumps(result)
        with self._locked():
            row = self._outbox.get(seq)
            if row is None or row["status"] != "pending":
                return False
            row.update(status="sent", sent_at=now, result=text, lease_owner=None, lease_expires=None)
            return True

    async def outbox_failed(self, seq: int, owner: str, error: str, *, now: float, retry_at: float | None) -> bool:
        with self._locked():
            row = self._outbox.get(seq)
            if row is None or row["status"] != "pending" or row["lease_owner"] != owner:
                return False
            row.update(
                status="pending" if retry_at is not None else "failed",
                last_error=error,
                next_attempt_at=retry_at if retry_at is not None else now,
                lease_owner=None,
                lease_expires=None,
            )
            return True

    async def list_outbox(
        self,
        *,
        run_id: str | None = None,
        status: OutboxStatus | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[OutboxRecord]:
        with self._locked():
            rows = [
                row
                for row in self._outbox.values()
                if (run_id is None or row["run_id"] == run_id)
                and (status is None or row["status"] == status)
                and (after is None or row["seq"] > after)
            ]
            return [outbox_record(row) for row in rows[:limit]]

    async def requeue_outbox(self, message_id: str, *, now: float) -> list[OutboxRecord]:
        with self._locked():
            requeued = []
            for row in self._outbox.values():
                if row["message_id"] == message_id and row["status"] == "failed":
                    row.update(status="pending", next_attempt_at=now, attempts=0, lease_owner=None, lease_expires=None)
                    requeued.append(outbox_record(row))
            return requeued

    async def purge_outbox(self, *, sent_before: float, limit: int = 1000) -> int:
        with self._locked():
            old = [
                seq
                for seq, row in self._outbox.items()
                if row["status"] == "sent" and row["sent_at"] is not None and row["sent_at"] < sent_before
            ][: max(limit, 0)]
            for seq in old:
                del self._outbox[seq]
            return len(old)

    async def outbox_stats(self, *, now: float) -> dict[str, float]:
        with self._locked():
            pending = [row["created_at"] for row in self._outbox.values() if row["status"] == "pending"]
            failed = sum(1 for row in self._outbox.values() if row["status"] == "failed")
        oldest = max(0.0, now - min(pending)) if pending else 0.0
        return {"pending": float(len(pending)), "failed": float(failed), "oldest_age": oldest}

    async def journal(self, run_id: str) -> list[StepRecord]:
        with self._locked():
            return [step_record(row) for row in self._steps.get(run_id, [])]

    # ---- dead letters ----

    async def dead_letter(self, run_id: str, reason: str, error: dict[str, Any] | None, *, now: float) -> None:
        error_text = dumps(error)
        with self._locked():
            row = self._runs.get(run_id)
            if row is None:
                raise KeyError(run_id)
            row.update(status="dead_lettered", finished_at=now, lease_owner=None, lease_expires=None)
            self._dead.pop(run_id, None)
            self._dead[run_id] = {
                "run_id": run_id,
                "flow": row["flow"],
                "reason": reason,
                "error": error_text,
                "created_at": now,
                "replayed_at": None,
                "replay_run_id": None,
            }

    async def list_dead_letters(
        self, *, flow: str | None = None, include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        with self._locked():
            rows = [
                row
                for row in self._dead.values()
                if (flow is None or row["flow"] == flow) and (include_replayed or row["replayed_at"] is None)
            ]
        rows.sort(key=lambda row: row["created_at"], reverse=True)  # stable: later inserts first on ties
        return [dead_letter_record(row) for row in rows[:limit]]

    async def mark_replayed(self, run_id: str, replay_run_id: str, *, now: float) -> None:
        with self._locked():
            row = self._dead.get(run_id)
            if row is None:
                raise KeyError(run_id)
            row.update(replayed_at=now, replay_run_id=replay_run_id)

    # ---- events ----

    async def events_after(self, after_id: int, *, limit: int = 100) -> list[EventRecord]:
        with self._locked():
            # ids are 1, 2, 3, ... so event id n sits at index n - 1
            return [event_record(row) for row in self._events[max(after_id, 0) : max(after_id, 0) + limit]]

    async def last_event_id(self) -> int:
        with self._locked():
            return len(self._events)

    # ---- trigger state ----

    async def get_cursor(self, trigger_id: str) -> Any:
        with self._locked():
            return decode_cursor(self._cursors.get(trigger_id))

    async def accept_poll(
        self, trigger_id: str, runs: Sequence[tuple[str, NewRun]], cursor: Any, *, now: float
    ) -> list[CreatedRun]:
        prepared = [(item_key, *self._prepare(new, now)) for item_key, new in runs]
        cursor_text = dumps(cursor)
        with self._locked():
            created: list[CreatedRun] = []
            for item_key, row, keys in prepared:
                if (trigger_id, item_key) in self._poll_items:
                    continue
                result = self._create(row, keys)
                self._poll_items[(trigger_id, item_key)] = result.run.id
                created.append(result)
            self._cursors[trigger_id] = cursor_text
            return created

    async def record_fire(self, schedule_id: str, fire_time: float, run: NewRun, *, now: float) -> CreatedRun | None:
        row, keys = self._prepare(run, now)
        with self._locked():
            if (schedule_id, fire_time) in self._fires:
                return None
            result = self._create(row, keys)
            self._fires[(schedule_id, fire_time)] = result.run.id
            return result

    # ---- entity state ----

    async def get_state(self, machine: str, key: str) -> str | None:
        with self._locked():
            row = self._states.get((machine, key))
            return None if row is None else str(row["state"])

    async def set_state(
        self, machine: str, key: str, state: str, *, expected: str | None, run_id: str, now: float
    ) -> bool:
        with self._locked():
            row = self._states.get((machine, key))
            current = None if row is None else row["state"]
            if current != expected:
                return False
            self._states[(machine, key)] = {"state": state, "run_id": run_id, "updated_at": now}
            return True

    # ---- health ----

    async def ping(self) -> bool:
        return self._open

    async def queue_stats(self, *, now: float) -> dict[str, float]:
        with self._locked():
            due = [ready_since(row) for row in self._runs.values() if is_due(row, now)]
            running = sum(1 for row in self._runs.values() if row["status"] == "running" and row["lease_expires"] > now)
        oldest = max(0.0, now - min(due)) if due else 0.0
        return {"depth": float(len(due)), "oldest_age": oldest, "running": float(running)}

    async def pending_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        with self._locked():
            for row in self._runs.values():
                status = row["status"]
                if status not in PENDING_STATUSES:
                    continue
                if status == "waiting" and PARKED_MARK in row["meta"]:
                    status = "parked"
                counts[(row["flow"], status)] = counts.get((row["flow"], status), 0) + 1
        return counts

    async def dead_letter_depth(self) -> dict[str, int]:
        depth: dict[str, int] = {}
        with self._locked():
            for row in self._dead.values():
                if row["replayed_at"] is None:
                    depth[row["flow"]] = depth.get(row["flow"], 0) + 1
        return depth

    async def run_counts(self, *, since: float, bucket: float) -> dict[tuple[str, str, int], int]:
        counts: dict[tuple[str, str, int], int] = {}
        with self._locked():
            for row in self._runs.values():
                if row["created_at"] >= since:
                    key = (row["flow"], row["status"], int((row["created_at"] - since) // bucket))
                    counts[key] = counts.get(key, 0) + 1
        return counts
