"""The outbox dispatcher (runtime/service/outbox.py) with a sender standing in for the connectors:
woken by a commit, retries with backoff and gives up after the last attempt (counted in its metrics),
keeps each operation's commit order, sends nothing after it stopped, and two dispatchers (two nodes)
on one PostgreSQL send every message once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.clock import SystemClock
from runtime.connector_api import ConnectorError
from runtime.engine.outbox import OutboxRetry
from runtime.service.metrics import Metrics
from runtime.service.outbox import OutboxDispatcher
from runtime.store.base import NewRun, OutboxMessage, OutboxRecord, Store
from runtime.store.memory import MemoryStore
from runtime.store.sql import SqlStore
from tests.connectors.brokers import wait_until
from tests.services import empty_public_schema, postgres_database

CLOCK = SystemClock()


async def commit(store: Store, operations: list[str]) -> list[str]:
    """One run whose steps published to `operations` (in order); the message ids."""
    run = (await store.create_run(NewRun(flow="ship", input={}), now=CLOCK.time())).run
    messages = [
        OutboxMessage(run.id, f"step{i}", operation, f"{run.id}-{i}", {"spec": {}, "params": {"i": i}}, CLOCK.time())
        for i, operation in enumerate(operations)
    ]
    await store.write_journal(run.id, [], outbox=messages)
    return [m.message_id for m in messages]


def dispatcher(metrics: Metrics, **options: Any) -> OutboxDispatcher:
    options.setdefault("poll_interval", 30.0)  # only a notify (or a due retry) wakes it in these tests
    return OutboxDispatcher("node-1/outbox", clock=CLOCK, metrics=metrics, lease=30.0, **options)


def sample(metrics: Metrics, name: str, operation: str) -> float:
    return metrics.registry.get_sample_value(name, {"operation": operation}) or 0.0


async def test_a_commit_wakes_it_and_each_operation_keeps_its_order() -> None:
    store = MemoryStore()
    await store.open()
    sent: list[str] = []

    async def send(record: OutboxRecord) -> Any:
        await asyncio.sleep(0.001 if record.operation == "a.publish" else 0)
        sent.append(record.message_id)
        return {"ok": record.message_id}

    metrics = Metrics()
    outbox = dispatcher(metrics)
    outbox.start(store, send)
    try:
        await asyncio.sleep(0)  # the first claim found nothing: it waits for a notify
        ids = await commit(store, ["a.publish", "b.publish", "a.publish", "a.publish", "b.publish"])
        outbox.notify()
        await wait_until(lambda: _sent(store, 5), timeout=5)
        await wait_until(lambda: _counted(metrics, "syncline_outbox_sent_total", 5), timeout=5)
    finally:
        await outbox.stop()
    assert sorted(sent) == sorted(ids)
    assert [i for i in sent if i in (ids[0], ids[2], ids[3])] == [ids[0], ids[2], ids[3]]
    assert sample(metrics, "syncline_outbox_sent_total", "a.publish") == 3
    assert sample(metrics, "syncline_outbox_sent_total", "b.publish") == 2
    assert [r.result for r in await store.list_outbox(limit=1)] == [{"ok": ids[0]}]


async def _counted(metrics: Metrics, name: str, count: int) -> bool:
    return sum(sample(metrics, name, operation) for operation in ("a.publish", "b.publish")) == count


async def _sent(store: Store, count: int) -> bool:
    return len(await store.list_outbox(status="sent")) == count


async def test_failed_sends_are_retried_then_given_up_and_counted() -> None:
    store = MemoryStore()
    await store.open()
    attempts: list[float] = []

    async def refuse(record: OutboxRecord) -> Any:
        attempts.append(CLOCK.time())
        raise ConnectorError("bus.publish: cannot connect to the broker", reason="connect", error_class="retriable")

    metrics = Metrics()
    outbox = dispatcher(metrics, retry=OutboxRetry(first=0.02, cap=0.05, attempts=3))
    [message_id] = await commit(store, ["bus.publish"])
    outbox.start(store, refuse)
    try:

        async def given_up() -> list[OutboxRecord]:
            if sample(metrics, "syncline_outbox_failures_total", "bus.publish") < 3:
                return []
            return await store.list_outbox(status="failed")

        [record] = await wait_until(given_up, timeout=5)
    finally:
        await outbox.stop()
    assert (record.message_id, record.attempts) == (message_id, 3)
    assert record.last_error == "bus.publish: cannot connect to the broker"
    assert len(attempts) == 3 and all(later > earlier for earlier, later in itertools.pairwise(attempts))
    assert sample(metrics, "syncline_outbox_failures_total", "bus.publish") == 3
    assert sample(metrics, "syncline_outbox_sent_total", "bus.publish") == 0
    assert await store.outbox_stats(now=CLOCK.time()) == {"pending": 0.0, "failed": 1.0, "oldest_age": 0.0}


async def test_a_requeued_message_is_sent_again_with_its_message_id() -> None:
    store = MemoryStore()
    await store.open()
    sent: list[str] = []
    broker_up = False

    async def send(record: OutboxRecord) -> Any:
        if not broker_up:
            raise ConnectorError("bus.publish: cannot connect", reason="connect", error_class="retriable")
        sent.append(record.message_id)

    outbox = dispatcher(Metrics(), retry=OutboxRetry(first=0.01, cap=0.01, attempts=2), poll_interval=0.02)
    [message_id] = await commit(store, ["bus.publish"])
    outbox.start(store, send)
    try:
        [gone] = await wait_until(lambda: store.list_outbox(status="failed"), timeout=5)
        broker_up = True
        [requeued] = await store.requeue_outbox(message_id, now=CLOCK.time())
        assert (requeued.seq, requeued.status) == (gone.seq, "pending")
        await wait_until(lambda: _sent(store, 1), timeout=5)
    finally:
        await outbox.stop()
    assert sent == [message_id]  # once, under the id it was committed with


async def test_sent_messages_past_the_retention_are_deleted_in_batches() -> None:
    store = MemoryStore()
    await store.open()

    async def send(record: OutboxRecord) -> Any:
        return None

    retention = [3600.0]
    batches: list[int] = []
    purge = store.purge_outbox

    async def counted_purge(*, sent_before: float, limit: int = 1000) -> int:
        deleted = await purge(sent_before=sent_before, limit=limit)
        batches.append(deleted)
        return deleted

    store.purge_outbox = counted_purge  # type: ignore[method-assign]
    outbox = dispatcher(
        Metrics(), poll_interval=0.01, purge_interval=0.01, purge_batch=2, retention=lambda: retention[0]
    )
    ids = await commit(store, ["bus.publish"] * 5)
    outbox.start(store, send)
    try:
        await wait_until(lambda: _sent(store, 5), timeout=5)
        purges = outbox._next_purge

        async def purge_ran() -> bool:
            return outbox._next_purge != purges

        await wait_until(purge_ran, timeout=5)  # a purge ran: nothing is an hour old
        assert len(await store.list_outbox()) == 5 and outbox.purged == 0
        [pending] = await commit(store, ["bus.publish"])  # not sent yet when the retention drops: kept
        await store.claim_outbox("someone-else", now=CLOCK.time(), lease=3600)
        retention[0] = 0.0

        async def all_purged() -> bool:
            return outbox.purged == 5

        batches.clear()
        await wait_until(all_purged, timeout=5)
    finally:
        await outbox.stop()
    assert [m.message_id for m in await store.list_outbox()] == [pending]
    assert [n for n in batches if n] == [2, 2, 1]  # bounded batches, until one comes back short
    assert len(ids) == 5


async def test_a_stopped_dispatcher_sends_nothing() -> None:
    store = MemoryStore()
    await store.open()
    calls: list[str] = []

    async def send(record: OutboxRecord) -> Any:
        calls.append(record.message_id)

    outbox = dispatcher(Metrics(), poll_interval=0.01)
    outbox.start(store, send)
    await outbox.stop()
    await commit(store, ["bus.publish"])
    outbox.notify()
    await asyncio.sleep(0.05)  # lets a (wrongly) running dispatcher poll several times
    assert calls == [] and len(await store.list_outbox(status="pending")) == 1


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    yield from postgres_database("syncline_outbox")


@pytest.mark.service
async def test_two_nodes_on_one_postgresql_send_every_message_once(pg_database: str) -> None:
    url = empty_public_schema(pg_database)
    stores = [SqlStore(url), SqlStore(url)]
    for store in stores:
        await store.open()
    sends: list[str] = []

    async def send(record: OutboxRecord) -> Any:
        await asyncio.sleep(0.002)  # a broker round trip: both nodes are sending at once
        sends.append(record.message_id)

    nodes = [
        OutboxDispatcher(f"node-{i}/outbox", clock=CLOCK, metrics=Metrics(), lease=30.0, poll_interval=0.02, batch=4)
        for i in range(2)
    ]
    try:
        ids = [i for _ in range(20) for i in await commit(stores[0], ["a.publish", "b.publish"])]
        for node, store in zip(nodes, stores, strict=True):
            node.start(store, send)
        await wait_until(lambda: _sent(stores[1], len(ids)), timeout=20)
    finally:
        for node in nodes:
            await node.stop()
        for store in stores:
            await store.close()
    assert sorted(sends) == sorted(ids)  # each once
    assert all(sample(node.metrics, "syncline_outbox_sent_total", "a.publish") > 0 for node in nodes)
