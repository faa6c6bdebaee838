"""The transactional outbox of `effect: publish` calls: staging a message, sending it, recording how.

A `call` step of a publish operation, on an executor with `outbox=True` (the service and `syncline
run`), does not send. `stage` keeps the rendered call (operation, spec, params, headers, timeout)
with the step as an `OutboxMessage`; the executor writes it in the same store transaction as the
step's journal entry (`Store.write_journal(..., outbox=...)`), and the step's output says the
message is queued. So a message exists exactly when its step is committed: a crash before the
commit re-runs the step (no message yet), a crash after it leaves the message for the next sender.

Its `message_id` is the call's idempotency key — derived from the run and the step key, or the
step's own `idempotency_key` — the same on every attempt; the broker connectors send it as the
message id (AMQP `message_id`, JetStream `Nats-Msg-Id`, a Redis Streams entry field deduped by a
script, an MQTT user property), so a message sent twice (a crash between the broker's confirmation
and `outbox_sent`) is recognisable by id.

`deliver` (`attempt`, then `settle`) sends one claimed message through the executor's connectors
and records the outcome: `outbox_sent` after the connector returned (the broker confirmed), else
`outbox_failed` with the next attempt's time (`OutboxRetry`: exponential backoff with jitter, at
least the connector's `retry_after`) or, after the last attempt, status `failed`. `drain` sends
every due message once (`syncline run`); the service's dispatcher (`runtime.service.outbox`) does it
continuously.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.clock import Clock
from runtime.connector_api import CallRequest, ConnectorError
from runtime.store.base import OutboxMessage, OutboxRecord, Store

if TYPE_CHECKING:
    from runtime.engine.context import StepCall
    from runtime.engine.executor import Executor
    from runtime.engine.plan import CompiledOperation

MAX_ERROR = 500  # characters of a failure kept with the message


def stage(call: StepCall, operation: CompiledOperation, request: CallRequest) -> dict[str, Any]:
    """Keep `request` as an outbox message of `call`'s step (written with its journal entry); the
    step's output."""
    message_id = request.idempotency_key
    assert message_id is not None, "a call step always has an idempotency key"
    call.outbox.append(
        OutboxMessage(
            run_id=call.state.run.id,
            step_key=call.key,
            operation=operation.target,
            message_id=message_id,
            request={
                "spec": request.spec,
                "params": request.params,
                "headers": request.headers,
                "timeout": request.timeout,
            },
            created_at=call.executor.clock.time(),
        )
    )
    return {"queued": True, "message_id": message_id, "operation": operation.target}


async def send(executor: Executor, record: OutboxRecord) -> Any:
    """Send one stored message through `executor`'s connectors (its plan's connection of that
    name, its Policy limits); the connector's output once the broker confirmed it."""
    try:
        operation = executor.plan.operation(record.operation)
    except KeyError:
        raise ConnectorError(
            f"operation {record.operation} is no longer in the project", reason="config", error_class="fatal"
        ) from None
    request = record.request
    timeout = request.get("timeout")  # read back from JSON as a Decimal
    call = CallRequest(
        operation=operation.name,
        spec=dict(request.get("spec") or {}),
        params=request.get("params") or {},
        idempotency_key=record.message_id,
        headers=dict(request.get("headers") or {}),
        timeout=float(timeout) if timeout is not None else None,
    )
    result = await executor.connectors.invoke(operation, call, executor.limits)
    return result.output


@dataclass(frozen=True)
class OutboxRetry:
    """When a message whose send failed is tried again: `first` seconds after the first failure,
    doubling up to `cap` (each delay drawn between half and all of it, so nodes do not retry in
    step), never before the connector's `retry_after`; after `attempts` attempts it is given up."""

    first: float = 0.5
    cap: float = 300.0
    attempts: int = 20  # the waits add up to 30-60 minutes

    def next_attempt(self, attempts: int, now: float, retry_after: float | None = None) -> float | None:
        """The time of the next attempt after `attempts` failed ones; None: give up."""
        if attempts >= self.attempts:
            return None
        delay = float(min(self.cap, self.first * 2.0 ** min(attempts - 1, 32)))
        delay = delay / 2 + random.random() * delay / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return now + max(delay, 0.001)


@dataclass
class Delivery:
    """What became of one claimed message."""

    record: OutboxRecord
    sent: bool
    error: str | None = None
    retry_at: float | None = None  # with an error: when it is tried again (None: given up)
    result: Any = None  # sent: the connector's output
    at: float = 0.0  # when the send ended


async def attempt(
    record: OutboxRecord,
    sender: Callable[[OutboxRecord], Awaitable[Any]],
    *,
    clock: Clock,
    retry: OutboxRetry,
    redact: Callable[[str], str] = lambda text: text,
) -> Delivery:
    """Send a claimed message once; the outcome, not recorded yet (`settle` records it)."""
    try:
        result = await sender(record)
    except Exception as exc:
        error = redact(_describe(exc))
        retry_after = exc.retry_after if isinstance(exc, ConnectorError) else None
        now = clock.time()
        return Delivery(record, False, error, retry.next_attempt(record.attempts, now, retry_after), at=now)
    return Delivery(record, True, result=result, at=clock.time())


async def settle(store: Store, outcome: Delivery, *, owner: str) -> None:
    """Record an `attempt` of `owner`'s claim: sent, or failed with its next attempt's time. A store
    failure raises `StoreError` (the message is then sent again once its lease runs out: the broker
    or the consumer knows it by its id)."""
    record = outcome.record
    if outcome.sent:
        await store.outbox_sent(record.seq, now=outcome.at, result=outcome.result)
    else:
        await store.outbox_failed(record.seq, owner, outcome.error or "", now=outcome.at, retry_at=outcome.retry_at)


async def deliver(
    store: Store,
    record: OutboxRecord,
    sender: Callable[[OutboxRecord], Awaitable[Any]],
    *,
    owner: str,
    clock: Clock,
    retry: OutboxRetry,
    redact: Callable[[str], str] = lambda text: text,
) -> Delivery:
    """Send a message claimed by `owner`, then record the outcome in the store (`attempt`, `settle`)."""
    outcome = await attempt(record, sender, clock=clock, retry=retry, redact=redact)
    await settle(store, outcome, owner=owner)
    return outcome


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


@dataclass
class DrainReport:
    sent: int = 0
    failed: list[Delivery] = field(default_factory=list)


async def drain(
    executor: Executor, *, owner: str, retry: OutboxRetry | None = None, lease: float = 60.0
) -> DrainReport:
    """Send every message due now once, oldest first (`syncline run` after its run): a failed one
    keeps its next attempt's time, for the next drain or a service."""
    store, clock = executor.store, executor.clock
    report = DrainReport()
    policy = retry or OutboxRetry()
    started = clock.time()  # claims see the outbox as due now: a message that failed is due later
    while True:
        claimed = await store.claim_outbox(owner, now=started, lease=lease, limit=32)
        if not claimed:
            return report
        for record in claimed:
            outcome = await deliver(
                store,
                record,
                lambda message: send(executor, message),
                owner=owner,
                clock=clock,
                retry=policy,
                redact=executor.secrets.redact,
            )
            if outcome.sent:
                report.sent += 1
            else:
                report.failed.append(outcome)
