"""The outbox dispatcher: sends the committed messages of `effect: publish` calls, one node's share.

One task per node. It claims due messages from the store in batches (`Store.claim_outbox`: a lease
per message, so nodes sharing one PostgreSQL never send one message at the same time) and sends
each through the connector with its stable message id (`runtime.engine.outbox.deliver`): marked
sent only after the broker confirmed it, else retried with backoff and, after the last attempt,
kept as `failed` with its error. Messages of one operation go out in commit order within a batch
(each outcome is written while the next message goes out); different operations are sent
concurrently.

Sent messages are deleted once they are older than the retention (`service.outbox_retention`,
default 7 days): every `purge_interval` seconds the dispatcher deletes them in batches of
`purge_batch` (`Store.purge_outbox`), oldest first, until a batch comes back short. Given-up
(`failed`) messages stay until an operator requeues them (`POST /api/v1/outbox/{message_id}/requeue`,
`syncline outbox requeue`), which keeps their message id.

It claims again at once after a full batch, when a run commits new messages (`notify`, called by
the executor after the commit), when a failed message's next attempt is due, and otherwise every
`poll_interval` seconds (messages left by a node that died, once their lease ran out).

Metrics: `syncline_outbox_sent_total` and `syncline_outbox_failures_total` (failed attempts) by
operation, counted here; `syncline_outbox_pending` and `syncline_outbox_failed` are read from the
store when /metrics is scraped (`runtime.service.gauges`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.clock import Clock
from runtime.engine.outbox import Delivery, OutboxRetry, attempt, settle
from runtime.service.metrics import Metrics
from runtime.store.base import OutboxRecord, Store, StoreError

log = logging.getLogger("syncline.outbox")

Sender = Callable[[OutboxRecord], Awaitable[Any]]


class OutboxDispatcher:
    """Sends this node's share of the outbox; see the module docstring."""

    def __init__(
        self,
        owner: str,
        *,
        clock: Clock,
        metrics: Metrics,
        lease: float = 30.0,
        poll_interval: float = 1.0,
        batch: int = 32,
        retry: OutboxRetry | None = None,
        redact: Callable[[str], str] = lambda text: text,
        retention: Callable[[], float] | None = None,
        purge_interval: float = 60.0,
        purge_batch: int = 1000,
    ) -> None:
        self.owner = owner
        self.clock = clock
        self.metrics = metrics
        self.lease = lease
        self.poll_interval = poll_interval
        self.batch = max(1, batch)
        self.retry = retry or OutboxRetry()
        self.redact = redact
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._store: Store | None = None
        self._send: Sender | None = None
        self._stopping = False
        self._retries: list[float] = []  # next attempts of messages this node failed to send (a heap)
        self.retention = retention  # seconds a sent message is kept (read at each purge: reloads change it)
        self.purge_interval = purge_interval
        self.purge_batch = max(1, purge_batch)
        self._next_purge: float | None = None
        self.purged = 0  # sent messages this node deleted

    def notify(self) -> None:
        """New messages were committed: claim now."""
        self._wake.set()

    def start(self, store: Store, send: Sender) -> None:
        if self._task is None:
            self._store, self._send, self._stopping = store, send, False
            self._task = asyncio.create_task(self._loop())

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; a batch being sent gets `grace` seconds. What is not sent stays in the
        outbox for the next start or another node."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def _loop(self) -> None:
        store = self._store
        assert store is not None
        while not self._stopping:
            self._wake.clear()  # before the claim: a notify while it runs is not lost
            try:
                claimed = await store.claim_outbox(
                    self.owner, now=self.clock.time(), lease=self.lease, limit=self.batch
                )
            except StoreError as exc:
                self.metrics.store_errors.inc()
                log.warning("outbox claim failed: %s", exc)
                await self._idle(min(self.poll_interval * 4, 2.0))
                continue
            if claimed:
                await self._send_batch(claimed)
                if len(claimed) == self.batch:
                    continue
            await self._purge()
            await self._idle(self._wait())

    async def _purge(self) -> None:
        """Delete the sent messages older than the retention, a batch at a time, when a purge is due."""
        store, now = self._store, self.clock.time()
        if store is None or self.retention is None or (self._next_purge is not None and now < self._next_purge):
            return
        self._next_purge = now + self.purge_interval
        cutoff = now - self.retention()
        deleted = 0
        try:
            while not self._stopping:
                count = await store.purge_outbox(sent_before=cutoff, limit=self.purge_batch)
                deleted += count
                if count < self.purge_batch:
                    break
                await asyncio.sleep(0)  # let the claims and the node's other work in between batches
        except StoreError as exc:
            self.metrics.store_errors.inc()
            log.warning("outbox purge failed: %s", exc)
        self.purged += deleted
        if deleted:
            log.info("outbox: deleted %d sent messages older than the retention", deleted)

    def _wait(self) -> float:
        """Seconds until the next claim: 0 when a retry came due, else until the next one or the poll."""
        now = self.clock.time()
        due = False
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
            due = True
        if due:
            return 0.0
        if self._retries:
            return min(self.poll_interval, self._retries[0] - now)
        return self.poll_interval

    async def _idle(self, seconds: float) -> None:
        if self._stopping or self._wake.is_set() or seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _send_batch(self, claimed: list[OutboxRecord]) -> None:
        by_operation: dict[str, list[OutboxRecord]] = {}
        for record in claimed:
            by_operation.setdefault(record.operation, []).append(record)
        await asyncio.gather(*(self._send_in_order(records) for records in by_operation.values()))

    async def _send_in_order(self, records: list[OutboxRecord]) -> None:
        """Send one operation's messages one after the other; each outcome is recorded while the
        next message goes out (the store groups those writes into few transactions)."""
        assert self._send is not None
        settling: list[asyncio.Task[None]] = []
        for record in records:
            outcome = await attempt(record, self._send, clock=self.clock, retry=self.retry, redact=self.redact)
            settling.append(asyncio.create_task(self._settle(outcome)))
        await asyncio.gather(*settling)

    async def _settle(self, outcome: Delivery) -> None:
        assert self._store is not None
        record = outcome.record
        try:
            await settle(self._store, outcome, owner=self.owner)
        except StoreError as exc:  # sent or not, it is tried again once its lease runs out
            self.metrics.store_errors.inc()
            log.warning("outbox message %s: the store failed: %s", record.message_id, exc)
            return
        if outcome.sent:
            self.metrics.child(self.metrics.outbox_sent, record.operation).inc()
            return
        self.metrics.child(self.metrics.outbox_failures, record.operation).inc()
        fields = {"run_id": record.run_id, "step": record.step_key, "message_id": record.message_id}
        if outcome.retry_at is None:
            log.error(
                "outbox message %s of run %s (%s) not sent after %d attempts, given up: %s",
                record.message_id,
                record.run_id,
                record.operation,
                record.attempts,
                outcome.error,
                extra={"fields": fields},
            )
            return
        log.warning(
            "outbox message %s (%s) attempt %d failed: %s; next attempt in %.2fs",
            record.message_id,
            record.operation,
            record.attempts,
            outcome.error,
            outcome.retry_at - self.clock.time(),
            extra={"fields": fields},
        )
        heapq.heappush(self._retries, outcome.retry_at)
