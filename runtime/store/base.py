"""The `Store` protocol: where runs, their step journal, dead letters, events and trigger state live.

Every implementation (in-memory for unit tests, SQLite by default, PostgreSQL for several nodes)
passes the same contract suite, `tests/store/contract.py`. Values stored as JSON keep `Decimal`
numbers exact (they are written with `runtime.expr.dumps` and read with `runtime.expr.loads`), and
every record a store returns is a fresh copy: changing it changes nothing stored.

Rules every implementation keeps:
- `create_run` is atomic with its idempotency check: for one `(flow, idempotency_key)` there is at
  most one run, whatever the concurrency; a second create returns the first run (`created=False`),
  and reports `conflict=True` when it carries a `request_hash` that differs from the stored one (a
  create without a `request_hash` never conflicts).
- A run gets an `id` from `new_run_id` (sortable text: creation time, then randomness) and a `seq`,
  an integer that grows with every accepted run (acceptance order; paging and ordering use it).
- `record_step` stores the step record and the events it emitted in one transaction; event ids grow
  in commit order, so a reader of `events_after` never skips an event committed later.
  `write_journal` appends several step records (each with its events) and then applies changes to
  the run, all in one transaction: the executor's way to commit what a run did since its last
  write together with its outcome, in one round trip.
- The outbox (`effect: publish` messages, `runtime.engine.outbox`): `write_journal(..., outbox=...)`
  stores messages in the same transaction as the step records that produced them, so a message
  exists exactly when its step is journaled. `claim_outbox` leases due `pending` messages (oldest
  `seq` first, `attempts` + 1) to one sender at a time, whatever the number of nodes (PostgreSQL:
  `FOR UPDATE SKIP LOCKED`); `outbox_sent` marks a message sent once its broker confirmed it, and
  `outbox_failed` records a failed attempt (retry at a time, or give up: status `failed`).
  `requeue_outbox` gives failed messages (by message id, kept) another round of attempts and
  `purge_outbox` deletes sent messages older than the retention, in bounded batches.
- `claim` hands a run to one worker at a time. A run is *due* when it is
  `queued` (with no `due_at`, or `due_at <= now`), `retrying` (no `due_at`, or `due_at <= now`),
  `waiting` with `due_at <= now` (a waiting run without `due_at` waits for an event, not a timer),
  or `running` with an expired lease (`lease_expires <= now`). A due run is claimable unless it has an
  `ordering_key` and an earlier run (smaller `seq`) of that key is not final: a key's later run waits
  while an earlier one is queued, running, retrying, waiting or held. So a key's runs are claimed one
  at a time, oldest accepted first, while runs of other keys go in parallel. Claiming sets `status`
  to running, the lease, and `started_at` when it is still empty; the oldest due runs go first.
- Claiming also keeps a run's `stalls`, the claims in a row that ended without progress: it is 0
  after a claim when a step was journaled since the run's previous claim; otherwise a claim of a
  `running` run (its lease expired: the worker crashed or lost it) adds one, other claims keep it.
  The count is stored with the run, so it survives restarts (poison runs, `runtime.service`).
  A claim also stores the run's journal length as `claim_steps`, returned with the claimed run.
- Unknown run ids: `get_run` returns None; `update_run`, `record_step`, `dead_letter` and
  `mark_replayed` raise `KeyError`.
- Failures of the store itself (unreachable, restarted, disk full, lock timeout) raise `StoreError`
  and leave nothing half-written; the next call tries again by itself. Values that are not JSON
  raise `TypeError`/`ValueError` before anything is written. A store used before `open` or after
  `close` raises `StoreError`.
- Times are Unix seconds (float, UTC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

from runtime.errors import SynclineError

RunStatus = Literal[
    "queued",  # accepted, waiting for a worker
    "running",  # claimed by a worker (lease_owner, lease_expires)
    "retrying",  # waiting for its next attempt at due_at
    "waiting",  # waiting for an event or a timer (due_at = timeout)
    "held",  # waiting for an operator's approval
    "succeeded",
    "failed",
    "dead_lettered",
    "filtered",  # a filter step stopped it
    "exception",  # a business exception (fail step, invalid transition)
    "rejected",  # a held run an operator rejected
    "cancelled",
]
FINAL_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "dead_lettered", "filtered", "exception", "rejected", "cancelled"}
)
# Runs that have not ended and wait on something, as `Store.pending_counts` reports them: `parked`
# is a `waiting` run parked by a state machine transition (its meta holds "parked").
PENDING_STATUSES: tuple[str, ...] = ("held", "retrying", "waiting")
PARKED_MARK = '"parked":{'  # how a parked run's meta reads in its stored JSON
# Statuses a run can be claimed from (see `claim` in the module docstring).
CLAIMABLE_STATUSES: tuple[str, ...] = ("queued", "retrying", "waiting", "running")
StepStatus = Literal["succeeded", "failed", "skipped", "compensated", "compensation_failed"]


@dataclass
class NewRun:
    """A run to create from one trigger event."""

    flow: str
    input: Any
    trigger: str = "manual"  # webhook | schedule | poll | queue | event | file | manual | replay | subflow
    flow_version: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    ordering_key: str | None = None
    business_keys: dict[str, str] = field(default_factory=dict)
    status: RunStatus = "queued"
    due_at: float | None = None
    parent_run_id: str | None = None
    replay_of: str | None = None
    replay_from_step: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    lease_owner: str | None = None  # with status "running": created already claimed (sync webhooks run inline)
    lease_expires: float | None = None


@dataclass
class RunRecord:
    id: str
    seq: int
    flow: str
    flow_version: str
    trigger: str
    status: RunStatus
    input: Any
    headers: dict[str, str]
    correlation_id: str | None
    idempotency_key: str | None
    request_hash: str | None
    ordering_key: str | None
    business_keys: dict[str, str]
    attempt: int
    due_at: float | None
    lease_owner: str | None
    lease_expires: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    output: Any
    error: dict[str, Any] | None
    parent_run_id: str | None
    replay_of: str | None
    replay_from_step: str | None
    meta: dict[str, Any]
    # claims in a row that ended (worker crashed, lease lost) without a new journaled step; the
    # service dead-letters a run as poison when it reaches the project's `poison_after`
    stalls: int = 0
    # steps journaled when the run was last claimed (set by `claim` in the same transaction): 0
    # right after a claim means its journal is empty, and the worker need not read it back
    claim_steps: int = 0


@dataclass
class CreatedRun:
    run: RunRecord
    created: bool  # False: an earlier run with the same idempotency key was returned
    conflict: bool = False  # same key, different request_hash


@dataclass
class StepRecord:
    """One execution of one step of a run (a retried step is one record with `attempts` > 1)."""

    run_id: str
    step_key: str  # the step id, with foreach positions: "each[3].upsert"; compensations: "post~compensate"
    kind: str
    status: StepStatus
    attempts: int = 1
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    seq: int = 0  # assigned by the store: order of recording within the run


@dataclass
class EventRecord:
    """An internal event emitted by a step (fed to event-triggered flows)."""

    name: str
    data: Any
    key: str | None = None
    source_run_id: str | None = None
    source_step: str | None = None
    id: int = 0  # assigned by the store
    created_at: float = 0.0


JournalEntry = tuple[StepRecord, Sequence[EventRecord]]  # a step record and the events it emitted


OutboxStatus = Literal["pending", "sent", "failed"]


@dataclass
class OutboxMessage:
    """A message to send after its step is committed (a `call` of an `effect: publish` operation).

    `request` holds the rendered call as the connector takes it: `spec` (the operation's rendered
    fields), `params`, `headers` and `timeout`. `message_id` is the call's idempotency key (derived
    from the run and the step key unless the step declares one), the same for every attempt."""

    run_id: str
    step_key: str
    operation: str  # "connection.operation"
    message_id: str
    request: dict[str, Any]
    created_at: float = 0.0


@dataclass
class OutboxRecord:
    """A stored outbox message and how sending it went."""

    seq: int  # commit order
    run_id: str
    step_key: str
    operation: str
    message_id: str
    request: dict[str, Any]
    status: OutboxStatus
    created_at: float
    attempts: int  # claims so far (a claim is an attempt to send)
    next_attempt_at: float
    lease_owner: str | None
    lease_expires: float | None
    sent_at: float | None
    last_error: str | None
    result: Any  # the connector's output once sent


@dataclass
class DeadLetter:
    run_id: str
    flow: str
    reason: str
    error: dict[str, Any] | None
    created_at: float
    replayed_at: float | None = None
    replay_run_id: str | None = None


@dataclass
class RunFilter:
    flow: str | None = None
    status: Sequence[str] | None = None
    correlation_id: str | None = None
    business_key: tuple[str, str] | None = None  # (name, value)
    parent: str | None = None  # runs whose `parent_run_id` is this run's id (its children)
    since: float | None = None
    until: float | None = None
    limit: int = 100
    before_seq: int | None = None  # paging: runs with seq < before_seq, newest first


class RunChanges(TypedDict, total=False):
    """Fields of a run that `Store.update_run` may change."""

    status: RunStatus
    output: Any
    error: dict[str, Any] | None
    due_at: float | None
    attempt: int
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    lease_expires: float | None
    meta: dict[str, Any]
    input: Any


class StoreError(SynclineError):
    """The store cannot be reached or refused a write; nothing was half-written. Retry later (503)."""


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_run_id(now: float) -> str:
    """A new run id: 26 Crockford base32 characters, 48 bits of milliseconds then 80 random bits.

    Ids made at later milliseconds sort after earlier ones; within one millisecond the order is
    random (use `seq` for exact acceptance order).
    """
    millis = min(max(int(now * 1000), 0), (1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars: list[str] = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class Store(Protocol):
    """Durable state of a Syncline deployment. All methods are coroutines."""

    async def open(self) -> None:
        """Connect and apply migrations (idempotent)."""

    async def close(self) -> None: ...

    # ---- runs ----
    async def create_run(self, new: NewRun, *, now: float) -> CreatedRun: ...

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def find_run(self, flow: str, idempotency_key: str) -> RunRecord | None: ...

    async def list_runs(self, filter: RunFilter) -> list[RunRecord]: ...

    async def update_run(self, run_id: str, changes: RunChanges) -> None:
        """Change only the fields named in `changes` (`ValueError` for other names, `KeyError` for
        an unknown run)."""

    # ---- leases ----
    async def claim(self, worker: str, *, now: float, lease: float, limit: int = 1) -> list[RunRecord]:
        """Lease up to `limit` claimable runs to `worker` until `now + lease`, oldest `seq` first."""

    async def renew(self, run_id: str, worker: str, *, now: float, lease: float) -> bool:
        """Extend a lease; False if the worker no longer holds it."""

    async def release(self, run_id: str, worker: str) -> None:
        """Give a running run back to the queue (status queued, lease cleared)."""

    async def release_claim(self, worker: str) -> int:
        """Give back every run still leased to `worker` (one claim's owner) that it has not started:
        after a claim whose answer was lost, so its runs wait neither for their leases nor count a
        stall. Returns how many runs went back to the queue."""

    # ---- journal ----
    async def record_step(self, record: StepRecord, events: Sequence[EventRecord] = ()) -> StepRecord:
        """Append a step to the run's journal (returned with its `seq`: 1, 2, ... per run) and store
        its events (`created_at` 0 means the step's `finished_at`), in one transaction."""

    async def write_journal(
        self,
        run_id: str,
        entries: Sequence[JournalEntry],
        changes: RunChanges | None = None,
        *,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        """Append `entries` (step records of `run_id`, each with its events) in order, store the
        `outbox` messages (of `run_id`, status `pending`, due at their `created_at`), then apply
        `changes` as `update_run` does, all in one transaction (`KeyError` for an unknown run,
        `ValueError` for a step or message of another run)."""

    async def journal(self, run_id: str) -> list[StepRecord]: ...

    # ---- outbox ----
    async def claim_outbox(self, owner: str, *, now: float, lease: float, limit: int = 32) -> list[OutboxRecord]:
        """Lease up to `limit` due messages to `owner` until `now + lease`, oldest `seq` first: `pending`,
        `next_attempt_at <= now`, and no live lease. Each claim adds one to `attempts`."""

    async def outbox_sent(self, seq: int, *, now: float, result: Any = None) -> bool:
        """Mark a `pending` message sent (`sent_at`, `result`, lease cleared); False when it is not
        pending (already marked, or unknown)."""

    async def outbox_failed(self, seq: int, owner: str, error: str, *, now: float, retry_at: float | None) -> bool:
        """Record a failed attempt of `owner`'s claim: `last_error`, lease cleared, due again at
        `retry_at`, or status `failed` when `retry_at` is None. False (nothing changed) when `owner`
        no longer holds the message's lease or it is not pending."""

    async def list_outbox(
        self,
        *,
        run_id: str | None = None,
        status: OutboxStatus | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[OutboxRecord]:
        """Outbox messages in `seq` order, of one run and/or one status (`after`: only `seq` > it)."""

    async def requeue_outbox(self, message_id: str, *, now: float) -> list[OutboxRecord]:
        """Give the `failed` messages with `message_id` another round of attempts: `pending`, due at
        `now`, `attempts` 0, lease cleared, `last_error` kept, message id unchanged (a consumer that
        dedupes by id still sees one message). The messages requeued, in `seq` order; [] when no
        failed message has that id."""

    async def purge_outbox(self, *, sent_before: float, limit: int = 1000) -> int:
        """Delete up to `limit` `sent` messages whose `sent_at` is before `sent_before`, oldest `seq`
        first; how many were deleted. Pending and failed messages are never deleted."""

    async def outbox_stats(self, *, now: float) -> dict[str, float]:
        """{'pending': messages not sent yet, 'failed': messages given up on, 'oldest_age': seconds
        since the oldest pending message was committed (0 when none)}."""

    # ---- dead letters ----
    async def dead_letter(self, run_id: str, reason: str, error: dict[str, Any] | None, *, now: float) -> None:
        """Set the run's status to dead_lettered (with `finished_at`, lease cleared) and record why,
        in one transaction; dead-lettering a run again replaces its record."""

    async def list_dead_letters(
        self, *, flow: str | None = None, include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, newest first; replayed ones only with `include_replayed`."""

    async def mark_replayed(self, run_id: str, replay_run_id: str, *, now: float) -> None:
        """Record that a dead letter was replayed as `replay_run_id` (`KeyError` if none)."""

    # ---- events ----
    async def events_after(self, after_id: int, *, limit: int = 100) -> list[EventRecord]:
        """Events with `id > after_id`, in id order."""

    async def last_event_id(self) -> int:
        """The id of the newest event (0 when there is none): where a `wait` starts looking."""

    # ---- trigger state ----
    async def get_cursor(self, trigger_id: str) -> Any:
        """The cursor stored by the last `accept_poll` of this trigger; None before the first."""

    async def accept_poll(
        self, trigger_id: str, runs: Sequence[tuple[str, NewRun]], cursor: Any, *, now: float
    ) -> list[CreatedRun]:
        """Create one run per (item key, run) not seen before for this trigger and store the new cursor,
        all in one transaction. Items whose key was seen are skipped (not in the result)."""

    async def record_fire(self, schedule_id: str, fire_time: float, run: NewRun, *, now: float) -> CreatedRun | None:
        """Create the run of one schedule fire; None when that (schedule, fire_time) was already recorded."""

    # ---- entity state ----
    async def get_state(self, machine: str, key: str) -> str | None: ...

    async def set_state(
        self, machine: str, key: str, state: str, *, expected: str | None, run_id: str, now: float
    ) -> bool:
        """Compare-and-set: change the state only if it is still `expected` (None: no state yet)."""

    # ---- health ----
    async def ping(self) -> bool:
        """True when the store answers; False (never an exception) when it does not."""

    async def queue_stats(self, *, now: float) -> dict[str, float]:
        """{'depth': due runs (ordering keys not considered), 'oldest_age': seconds the oldest due run
        has waited since it became due (0 when none), 'running': runs with a live lease}."""

    async def pending_counts(self) -> dict[tuple[str, str], int]:
        """(flow, status) → how many runs are `held`, `retrying`, `waiting` or `parked` (a waiting
        run parked by a state machine transition is counted as `parked` only). Reads only the
        runs not ended (an index on status), for /metrics."""

    async def dead_letter_depth(self) -> dict[str, int]:
        """flow → dead letters not replayed yet, for /metrics."""

    async def run_counts(self, *, since: float, bucket: float) -> dict[tuple[str, str, int], int]:
        """(flow, status, n) → how many runs accepted at or after `since` are in `status`, where n is
        the bucket of their `created_at`: `int((created_at - since) // bucket)` (the console's
        overview: runs per flow and hour of the last day). Counted by the database."""
