"""The outbox part of the store contract (`Store.write_journal(..., outbox=...)`, `claim_outbox`,
`outbox_sent`, `outbox_failed`, `list_outbox`, `outbox_stats`, `requeue_outbox`, `purge_outbox`), for
every store.

Mixed into the store test classes like `tests/store/contract.py`'s classes: `OutboxContract` for
every store, `SharedOutboxContract` for stores several instances open on one database (two nodes
sending from one outbox), `OutboxMigrationContract` for the SQL stores (migration 3).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, select

from runtime.store.base import OutboxMessage, StepRecord, Store
from runtime.store.schema import schema_version
from tests.store.contract import T0, MakeStore, async_test, opened, run, same_json


def message(run_id: str, key: str = "announce", *, at: float = T0, **request: Any) -> OutboxMessage:
    return OutboxMessage(
        run_id=run_id,
        step_key=key,
        operation="bus.publish",
        message_id=f"id-{run_id[-6:]}-{key}",
        request={"spec": {"routing_key": "q"}, "params": request or {"n": 1}, "headers": {}, "timeout": None},
        created_at=at,
    )


def step(run_id: str, key: str = "announce") -> StepRecord:
    return StepRecord(run_id=run_id, step_key=key, kind="call", status="succeeded", output={"queued": True})


async def _queued(store: Store, count: int, *, at: float = T0) -> list[str]:
    """`count` runs, each with one journaled step and its message; their run ids in commit order."""
    ids = []
    for _ in range(count):
        made = (await store.create_run(run(), now=at)).run.id
        await store.write_journal(made, [(step(made), [])], outbox=[message(made, at=at)])
        ids.append(made)
    return ids


class OutboxContract:
    """What every store does with outbox messages."""

    @async_test
    async def test_a_message_is_committed_with_its_step_and_comes_back_as_written(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        sent = message(made, amount=Decimal("19.990"), text="Grüße ✓")
        await store.write_journal(made, [(step(made), [])], {"status": "succeeded"}, outbox=[sent])
        assert [s.step_key for s in await store.journal(made)] == ["announce"]
        [stored] = await store.list_outbox(run_id=made)
        assert (stored.run_id, stored.step_key, stored.operation, stored.message_id) == (
            made,
            "announce",
            "bus.publish",
            sent.message_id,
        )
        assert same_json(stored.request, sent.request)
        assert stored.status == "pending" and stored.attempts == 0 and stored.sent_at is None
        assert stored.created_at == T0 and stored.next_attempt_at == T0 and stored.lease_owner is None
        stored.request["params"]["text"] = "changed"  # records are copies
        assert (await store.list_outbox(run_id=made))[0].request["params"]["text"] == "Grüße ✓"
        # messages alone, without steps or changes, are written too
        await store.write_journal(made, [], outbox=[message(made, "later")])
        assert [m.step_key for m in await store.list_outbox(run_id=made)] == ["announce", "later"]

    @async_test
    async def test_a_failing_journal_write_leaves_no_message_and_a_bad_message_no_step(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        bad_step = StepRecord(run_id=made, step_key="bad", kind="call", status="succeeded", output=object())
        with pytest.raises((TypeError, ValueError)):
            await store.write_journal(made, [(bad_step, [])], outbox=[message(made)])
        with pytest.raises((TypeError, ValueError)):
            await store.write_journal(made, [(step(made), [])], outbox=[message(made, payload=object())])
        with pytest.raises(ValueError):  # a message of another run
            await store.write_journal(made, [(step(made), [])], outbox=[message("someone-else")])
        with pytest.raises(KeyError):
            await store.write_journal("missing", [], outbox=[message("missing")])
        assert await store.journal(made) == []
        assert await store.list_outbox() == []
        assert (await store.outbox_stats(now=T0))["pending"] == 0

    @async_test
    async def test_claims_take_due_messages_oldest_first_and_lease_them(self, store: Store) -> None:
        ids = await _queued(store, 5)
        first = await store.claim_outbox("a", now=T0 + 1, lease=30, limit=2)
        assert [m.run_id for m in first] == ids[:2]
        assert all(m.lease_owner == "a" and m.lease_expires == T0 + 31 and m.attempts == 1 for m in first)
        second = await store.claim_outbox("b", now=T0 + 1, lease=30, limit=10)
        assert [m.run_id for m in second] == ids[2:]
        assert await store.claim_outbox("c", now=T0 + 30, lease=30) == []  # all leased
        # a lease that ran out (its sender crashed) makes the message claimable again: a second attempt
        again = await store.claim_outbox("c", now=T0 + 31, lease=30, limit=1)
        assert [(m.run_id, m.attempts, m.lease_owner) for m in again] == [(ids[0], 2, "c")]
        for sent in [*first, *second]:
            await store.outbox_sent(sent.seq, now=T0 + 31)
        # messages are not due before their created_at
        later = (await store.create_run(run(), now=T0)).run.id
        await store.write_journal(later, [], outbox=[message(later, at=T0 + 100)])
        assert await store.claim_outbox("d", now=T0 + 99, lease=1) == []
        assert [m.run_id for m in await store.claim_outbox("d", now=T0 + 100, lease=1)] == [later]
        assert await store.claim_outbox("d", now=T0, lease=1, limit=0) == []

    @async_test
    async def test_a_sent_message_is_never_claimed_again(self, store: Store) -> None:
        [made] = await _queued(store, 1)
        [claimed] = await store.claim_outbox("a", now=T0, lease=30)
        assert await store.outbox_sent(claimed.seq, now=T0 + 2, result={"seq": 7, "duplicate": False})
        assert not await store.outbox_sent(claimed.seq, now=T0 + 3)  # marked once
        assert not await store.outbox_sent(10**9, now=T0 + 3)  # unknown
        [stored] = await store.list_outbox(run_id=made)
        assert (stored.status, stored.sent_at, stored.result, stored.lease_owner) == (
            "sent",
            T0 + 2,
            {"seq": 7, "duplicate": False},
            None,
        )
        assert await store.claim_outbox("b", now=T0 + 1000, lease=30) == []
        assert not await store.outbox_failed(claimed.seq, "a", "late", now=T0 + 4, retry_at=T0 + 5)
        assert (await store.outbox_stats(now=T0 + 1000))["pending"] == 0

    @async_test
    async def test_a_failed_attempt_is_retried_at_its_time_then_given_up(self, store: Store) -> None:
        [made] = await _queued(store, 1)
        [claimed] = await store.claim_outbox("a", now=T0, lease=30)
        assert not await store.outbox_failed(claimed.seq, "someone-else", "nope", now=T0, retry_at=T0 + 1)
        assert await store.outbox_failed(claimed.seq, "a", "connection refused", now=T0 + 1, retry_at=T0 + 5)
        [stored] = await store.list_outbox(run_id=made)
        assert (stored.status, stored.last_error, stored.next_attempt_at, stored.lease_owner, stored.attempts) == (
            "pending",
            "connection refused",
            T0 + 5,
            None,
            1,
        )
        assert await store.claim_outbox("b", now=T0 + 4, lease=30) == []
        [again] = await store.claim_outbox("b", now=T0 + 5, lease=30)
        assert again.attempts == 2
        assert await store.outbox_failed(again.seq, "b", "still refused", now=T0 + 6, retry_at=None)
        [gone] = await store.list_outbox(status="failed")
        assert (gone.run_id, gone.status, gone.last_error) == (made, "failed", "still refused")
        assert await store.claim_outbox("c", now=T0 + 10_000, lease=30) == []
        assert await store.list_outbox(status="pending") == []
        assert await store.outbox_stats(now=T0 + 10) == {"pending": 0.0, "failed": 1.0, "oldest_age": 0.0}

    @async_test
    async def test_outbox_stats_and_listing(self, store: Store) -> None:
        assert await store.outbox_stats(now=T0) == {"pending": 0.0, "failed": 0.0, "oldest_age": 0.0}
        ids = await _queued(store, 3)
        [newer] = await _queued(store, 1, at=T0 + 5)
        stats = await store.outbox_stats(now=T0 + 20)
        assert stats == {"pending": 4.0, "failed": 0.0, "oldest_age": 20.0}
        assert [m.run_id for m in await store.list_outbox(limit=2)] == ids[:2]
        assert [m.run_id for m in await store.list_outbox(status="pending")] == [*ids, newer]
        assert await store.list_outbox(status="sent") == []

    @async_test
    async def test_a_given_up_message_is_requeued_with_its_message_id(self, store: Store) -> None:
        made, other = await _queued(store, 2)
        for claimed in await store.claim_outbox("a", now=T0, lease=30):
            await store.outbox_failed(claimed.seq, "a", "refused", now=T0 + 1, retry_at=None)
        [gone, _] = await store.list_outbox(status="failed")
        assert await store.requeue_outbox("no-such-id", now=T0 + 50) == []
        [requeued] = await store.requeue_outbox(gone.message_id, now=T0 + 50)
        assert (requeued.seq, requeued.message_id, requeued.run_id) == (gone.seq, gone.message_id, made)
        assert (requeued.status, requeued.attempts, requeued.next_attempt_at, requeued.lease_owner) == (
            "pending",
            0,
            T0 + 50,
            None,
        )
        assert requeued.last_error == "refused"  # kept for the operator until it is sent
        assert await store.requeue_outbox(gone.message_id, now=T0 + 51) == []  # pending now, not failed
        assert [m.run_id for m in await store.list_outbox(status="failed")] == [other]
        assert await store.claim_outbox("b", now=T0 + 49, lease=30) == []  # due at the requeue
        [again] = await store.claim_outbox("b", now=T0 + 50, lease=30)
        assert (again.seq, again.message_id, again.attempts) == (gone.seq, gone.message_id, 1)
        assert await store.outbox_sent(again.seq, now=T0 + 51)
        assert await store.outbox_stats(now=T0 + 60) == {"pending": 0.0, "failed": 1.0, "oldest_age": 0.0}

    @async_test
    async def test_sent_messages_older_than_the_retention_are_purged_in_batches(self, store: Store) -> None:
        ids = await _queued(store, 7)
        claimed = await store.claim_outbox("a", now=T0, lease=30, limit=10)
        for n, record in enumerate(claimed[:5]):  # sent at T0+10 .. T0+14
            assert await store.outbox_sent(record.seq, now=T0 + 10 + n)
        await store.outbox_failed(claimed[5].seq, "a", "refused", now=T0 + 1, retry_at=None)  # given up: kept
        # claimed[6] stays pending: kept
        assert await store.purge_outbox(sent_before=T0 + 10) == 0
        assert await store.purge_outbox(sent_before=T0 + 13, limit=2) == 2  # the oldest two
        assert [m.run_id for m in await store.list_outbox(status="sent")] == ids[2:5]
        assert await store.purge_outbox(sent_before=T0 + 13, limit=2) == 1  # T0+12; T0+13 is not before
        assert await store.purge_outbox(sent_before=T0 + 1000, limit=0) == 0
        assert await store.purge_outbox(sent_before=T0 + 1000) == 2
        assert await store.purge_outbox(sent_before=T0 + 1000) == 0
        left = await store.list_outbox()
        assert [(m.run_id, m.status) for m in left] == [(ids[5], "failed"), (ids[6], "pending")]
        assert await store.outbox_stats(now=T0) == {"pending": 1.0, "failed": 1.0, "oldest_age": 0.0}

    @async_test
    async def test_listing_pages_by_seq(self, store: Store) -> None:
        ids = await _queued(store, 5)
        first = await store.list_outbox(limit=2)
        assert [m.run_id for m in first] == ids[:2]
        rest = await store.list_outbox(limit=10, after=first[-1].seq)
        assert [m.run_id for m in rest] == ids[2:]
        assert await store.list_outbox(status="pending", after=rest[-1].seq) == []

    @async_test
    async def test_concurrent_claimers_never_share_a_message(self, store: Store) -> None:
        ids = await _queued(store, 30)
        taken = await _drain([store] * 6, now=T0 + 1)
        assert sorted(taken) == sorted(ids)


async def _drain(stores: list[Store], *, now: float) -> list[str]:
    """Claim from every store concurrently until nothing is left; the run ids claimed."""
    taken: list[str] = []

    async def sender(store: Store, name: str) -> None:
        while True:
            got = await store.claim_outbox(name, now=now, lease=600, limit=4)
            if not got:
                return
            taken.extend(m.run_id for m in got)
            await asyncio.sleep(0)

    await asyncio.gather(*(sender(s, f"s{i}") for i, s in enumerate(stores)))
    return taken


class SharedOutboxContract:
    """Two nodes on one database send from one outbox."""

    @async_test
    async def test_two_instances_never_claim_a_message_twice(self, store: Store, make_store: MakeStore) -> None:
        ids = await _queued(store, 40)
        async with opened(make_store) as other:
            taken = await _drain([store, other] * 3, now=T0 + 1)
            assert sorted(taken) == sorted(ids)
            [first] = await store.list_outbox(limit=1)
            assert await other.outbox_sent(first.seq, now=T0 + 2)  # marked by the node that sent it
        assert (await store.list_outbox(limit=1))[0].status == "sent"


class OutboxMigrationContract:
    """Migration 3 adds the outbox to a database at version 2."""

    @async_test
    async def test_migration_3_adds_the_outbox(self, make_store: MakeStore) -> None:
        async with opened(make_store) as store:
            made = (await store.create_run(run(), now=T0)).run.id

            def downgrade(conn: Connection) -> None:  # back to the shape of version 2
                conn.exec_driver_sql("DROP TABLE syncline_outbox")
                conn.exec_driver_sql("DROP INDEX ix_syncline_runs_parent")  # migration 4
                conn.exec_driver_sql("DELETE FROM syncline_schema_version WHERE version > 2")

            await store._write(downgrade)  # type: ignore[attr-defined]
            from runtime.store.migrations import apply

            assert await store._write(lambda c: apply(c, now=T0)) == [3, 4]  # type: ignore[attr-defined]
            query = select(schema_version.c.version).order_by(schema_version.c.version)
            versions = await store._read(lambda c: list(c.execute(query).scalars()))  # type: ignore[attr-defined]
            assert versions == [1, 2, 3, 4]
            await store.write_journal(made, [(step(made), [])], outbox=[message(made)])
            assert [m.run_id for m in await store.claim_outbox("a", now=T0, lease=1)] == [made]
