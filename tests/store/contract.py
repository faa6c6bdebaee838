"""The contract every `Store` implementation passes (memory, SQLite, PostgreSQL).

Use it by subclassing: `class TestMyStore(StoreContract)` with a `make_store` fixture that returns a
callable building a new, unopened store on the test's (empty) database; stores that can share one
database with another instance also subclass `SharedDatabaseContract`, whose tests open a second
instance on the same database, and the SQL stores `SqlStoreContract` (migrations). Each test runs
its body in a fresh event loop (`async_test`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, ParamSpec

import pytest
from sqlalchemy import Connection, inspect, select

from runtime.expr.jsonvalues import dumps
from runtime.store.base import (
    EventRecord,
    NewRun,
    RunFilter,
    RunRecord,
    StepRecord,
    Store,
    StoreError,
)
from runtime.store.migrations import LATEST, MIGRATIONS, Migration, apply
from runtime.store.schema import schema_version

P = ParamSpec("P")
MakeStore = Callable[[], Store]
T0 = 1_700_000_000.0


def async_test(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an `async def` test body in its own event loop (no pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


@asynccontextmanager
async def opened(make_store: MakeStore) -> AsyncIterator[Store]:
    """Another opened store instance on the same database, closed afterwards."""
    store = make_store()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def run(flow: str = "orders", **fields: Any) -> NewRun:
    fields.setdefault("input", {"n": 1})
    return NewRun(flow=flow, **fields)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON text: `Decimal('1.10')` differs from `Decimal('1.1')` and from `1.1`."""
    return dumps(a) == dumps(b)


DECIMALS: dict[str, Any] = {
    "amount": Decimal("0.1"),
    "total": Decimal("1234567890.123456789012345678"),
    "scaled": Decimal("1.10"),
    "tiny": Decimal("-0.000001"),
    "big_int": 10**30,
    "nested": {"lines": [{"qty": 3, "price": Decimal("19.99")}, None, True, "Grüße ✓", []]},
}


class StoreContract:
    """Tests every store passes; see the module docstring."""

    @pytest.fixture
    def make_store(self) -> MakeStore:
        pytest.fail(f"{type(self).__name__} must override the make_store fixture with its store's factory")

    @pytest.fixture
    def store(self, make_store: MakeStore) -> Iterator[Store]:
        store = make_store()
        asyncio.run(store.open())
        yield store
        asyncio.run(store.close())

    # ---- runs ----

    @async_test
    async def test_create_get_find(self, store: Store) -> None:
        new = run(
            input={"id": 7},
            trigger="webhook",
            flow_version="v3",
            headers={"x-a": "1"},
            correlation_id="corr-1",
            idempotency_key="k1",
            request_hash="h1",
            ordering_key="cust-1",
            business_keys={"order": "4711"},
            meta={"m": [1]},
            parent_run_id="parent",
        )
        created = await store.create_run(new, now=T0)
        assert created.created and not created.conflict
        got = created.run
        assert (got.flow, got.status, got.input, got.trigger, got.flow_version) == (
            "orders",
            "queued",
            {"id": 7},
            "webhook",
            "v3",
        )
        assert (got.headers, got.correlation_id, got.idempotency_key, got.request_hash) == (
            {"x-a": "1"},
            "corr-1",
            "k1",
            "h1",
        )
        assert (got.ordering_key, got.business_keys, got.meta, got.parent_run_id) == (
            "cust-1",
            {"order": "4711"},
            {"m": [1]},
            "parent",
        )
        assert got.created_at == T0 and got.lease_owner is None and got.output is None and got.error is None
        assert await store.get_run(got.id) == got
        assert await store.find_run("orders", "k1") == got
        assert await store.find_run("other", "k1") is None
        assert await store.find_run("orders", "k2") is None
        assert await store.get_run("no-such-run") is None

    @async_test
    async def test_records_are_copies(self, store: Store) -> None:
        created = await store.create_run(run(input={"list": [1]}), now=T0)
        created.run.input["list"].append(2)
        created.run.business_keys["x"] = "y"
        again = await store.get_run(created.run.id)
        assert again is not None and again.input == {"list": [1]} and again.business_keys == {}

    @async_test
    async def test_ids_sort_by_time_and_seq_grows(self, store: Store) -> None:
        made = [(await store.create_run(run(), now=T0 + i)).run for i in range(5)]
        seqs = [r.seq for r in made]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert [r.id for r in made] == sorted(r.id for r in made)
        assert all(len(r.id) == 26 for r in made)

    @async_test
    async def test_idempotent_create_returns_first_run(self, store: Store) -> None:
        first = await store.create_run(run(input={"v": 1}, idempotency_key="k", request_hash="h"), now=T0)
        same = await store.create_run(run(input={"v": 1}, idempotency_key="k", request_hash="h"), now=T0 + 1)
        assert first.created and not same.created and not same.conflict
        assert same.run == first.run
        differs = await store.create_run(run(input={"v": 2}, idempotency_key="k", request_hash="other"), now=T0 + 2)
        assert not differs.created and differs.conflict and differs.run.input == {"v": 1}
        unhashed = await store.create_run(run(input={"v": 3}, idempotency_key="k"), now=T0 + 3)
        assert not unhashed.created and not unhashed.conflict
        other_flow = await store.create_run(run("invoices", idempotency_key="k"), now=T0 + 4)
        assert other_flow.created
        assert len(await store.list_runs(RunFilter())) == 2
        # runs without a key never deduplicate
        assert (await store.create_run(run(), now=T0)).created and (await store.create_run(run(), now=T0)).created

    @async_test
    async def test_concurrent_creates_with_one_key_make_one_run(self, store: Store) -> None:
        results = await asyncio.gather(
            *(store.create_run(run(idempotency_key="same", request_hash="h"), now=T0) for _ in range(20))
        )
        assert sum(r.created for r in results) == 1
        assert len({r.run.id for r in results}) == 1
        assert not any(r.conflict for r in results)
        assert len(await store.list_runs(RunFilter(flow="orders"))) == 1

    @async_test
    async def test_update_run_changes_only_named_fields(self, store: Store) -> None:
        made = (await store.create_run(run(input={"a": 1}, meta={"m": 1}), now=T0)).run
        await store.update_run(
            made.id,
            {"status": "succeeded", "output": {"erp_id": Decimal("12.50")}, "finished_at": T0 + 5, "attempt": 2},
        )
        got = await store.get_run(made.id)
        assert got is not None
        assert (got.status, got.finished_at, got.attempt) == ("succeeded", T0 + 5, 2)
        assert same_json(got.output, {"erp_id": Decimal("12.50")})
        assert got.input == {"a": 1} and got.meta == {"m": 1} and got.created_at == T0
        await store.update_run(made.id, {"error": {"code": "E1"}, "meta": {"m": 2}, "output": None})
        got = await store.get_run(made.id)
        assert got is not None and got.error == {"code": "E1"} and got.meta == {"m": 2} and got.output is None
        assert got.status == "succeeded"
        with pytest.raises(KeyError):
            await store.update_run("missing", {"status": "failed"})
        with pytest.raises(ValueError, match="flow"):
            await store.update_run(made.id, {"flow": "x"})  # type: ignore[typeddict-unknown-key]

    # ---- leases ----

    @async_test
    async def test_claim_takes_oldest_due_runs_and_sets_the_lease(self, store: Store) -> None:
        ids = [(await store.create_run(run(), now=T0 + i)).run.id for i in range(3)]
        first = await store.claim("w1", now=T0 + 10, lease=30, limit=2)
        assert [r.id for r in first] == ids[:2]
        for r in first:
            assert (r.status, r.lease_owner, r.lease_expires, r.started_at) == ("running", "w1", T0 + 40, T0 + 10)
        stored = await store.get_run(ids[0])
        assert stored is not None and stored.status == "running" and stored.lease_owner == "w1"
        assert [r.id for r in await store.claim("w2", now=T0 + 10, lease=30, limit=5)] == [ids[2]]
        assert await store.claim("w3", now=T0 + 10, lease=30) == []

    @async_test
    async def test_concurrent_claimers_never_share_a_run(self, store: Store) -> None:
        ids = {(await store.create_run(run(), now=T0)).run.id for _ in range(30)}
        claimed = await _drain([store] * 8, now=T0 + 1)
        assert sorted(claimed) == sorted(ids)

    @async_test
    async def test_expired_lease_makes_run_claimable_again(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run
        [held] = await store.claim("w1", now=T0 + 100, lease=10)
        assert held.lease_expires == T0 + 110
        assert await store.claim("w2", now=T0 + 109, lease=10) == []
        [taken] = await store.claim("w2", now=T0 + 110, lease=10)
        assert taken.id == made.id and taken.lease_owner == "w2" and taken.started_at == T0 + 100
        assert not await store.renew(made.id, "w1", now=T0 + 111, lease=10)
        assert await store.renew(made.id, "w2", now=T0 + 111, lease=50)
        again = await store.get_run(made.id)
        assert again is not None and again.lease_expires == T0 + 161 and again.lease_owner == "w2"

    @async_test
    async def test_claims_of_an_expired_lease_without_progress_count_as_stalls(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run
        assert made.stalls == 0
        stalls = []
        now = T0
        for _ in range(4):  # claimed, then abandoned: its lease runs out with nothing journaled
            [taken] = await store.claim("w", now=now, lease=10)
            stalls.append(taken.stalls)
            now += 10
        assert stalls == [0, 1, 2, 3]  # the first claim took it from the queue: nothing was lost yet
        stored = await store.get_run(made.id)
        assert stored is not None and stored.stalls == 3
        await store.record_step(StepRecord(run_id=made.id, step_key="a", kind="set", status="succeeded"))
        [progressed] = await store.claim("w", now=now, lease=10)
        assert progressed.stalls == 0  # a step was journaled since the previous claim
        [stalled] = await store.claim("w", now=now + 10, lease=10)
        assert stalled.stalls == 1

    @async_test
    async def test_claims_from_the_queue_keep_the_stalls(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run
        await store.claim("w", now=T0, lease=10)
        [stalled] = await store.claim("w", now=T0 + 10, lease=10)
        assert stalled.stalls == 1
        await store.release(made.id, "w")  # a graceful shutdown gives it back: not a crash
        [again] = await store.claim("w", now=T0 + 11, lease=10)
        assert again.stalls == 1
        await store.update_run(made.id, {"status": "retrying", "due_at": T0 + 20, "lease_owner": None})
        [retried] = await store.claim("w", now=T0 + 20, lease=10)
        assert retried.stalls == 1
        # a run created already claimed (a sync webhook run executed inline) that is abandoned
        inline = (await store.create_run(run(status="running", lease_owner="n", lease_expires=T0 + 5), now=T0)).run
        [taken] = [r for r in await store.claim("w", now=T0 + 5, lease=10, limit=5) if r.id == inline.id]
        assert taken.stalls == 1

    @async_test
    async def test_renew_and_release(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run
        assert not await store.renew(made.id, "w1", now=T0, lease=10)  # not claimed yet
        await store.claim("w1", now=T0, lease=10)
        assert await store.renew(made.id, "w1", now=T0 + 5, lease=10)
        assert await store.claim("w2", now=T0 + 12, lease=10) == []  # renewed until T0 + 15
        await store.release(made.id, "w2")  # not the holder: nothing changes
        held = await store.get_run(made.id)
        assert held is not None and held.status == "running" and held.lease_owner == "w1"
        await store.release(made.id, "w1")
        back = await store.get_run(made.id)
        assert back is not None and (back.status, back.lease_owner, back.lease_expires) == ("queued", None, None)
        assert not await store.renew(made.id, "w1", now=T0 + 6, lease=10)
        assert [r.id for r in await store.claim("w3", now=T0 + 6, lease=10)] == [made.id]
        assert not await store.renew("missing", "w3", now=T0, lease=1)

    @async_test
    async def test_release_claim_gives_back_one_claims_runs_without_a_stall(self, store: Store) -> None:
        made = [(await store.create_run(run(input={"i": i}), now=T0)).run.id for i in range(3)]
        lost = await store.claim("node/c1", now=T0, lease=10, limit=2)  # say its answer never arrived
        kept = await store.claim("node/c2", now=T0, lease=10, limit=1)
        assert sorted(r.id for r in lost + kept) == sorted(made)
        assert await store.release_claim("node/c1") == 2
        assert await store.release_claim("node/c1") == 0
        for taken in lost:
            back = await store.get_run(taken.id)
            assert back is not None and (back.status, back.lease_owner, back.lease_expires) == ("queued", None, None)
        still = await store.get_run(kept[0].id)
        assert still is not None and (still.status, still.lease_owner) == ("running", "node/c2")
        again = await store.claim("node/c3", now=T0 + 1, lease=10, limit=5)  # at once, not after the lease
        assert sorted(r.id for r in again) == sorted(r.id for r in lost)
        assert all(r.stalls == 0 for r in again)

    @async_test
    async def test_ordering_key_runs_one_at_a_time_in_acceptance_order(self, store: Store) -> None:
        a = [(await store.create_run(run(ordering_key="A", input={"i": i}), now=T0 + i)).run.id for i in range(3)]
        b = [(await store.create_run(run(ordering_key="B", input={"i": i}), now=T0 + i)).run.id for i in range(2)]
        free = (await store.create_run(run(), now=T0 + 9)).run.id
        first = await store.claim("w", now=T0 + 10, lease=60, limit=10)
        assert [r.id for r in first] == [a[0], b[0], free]
        assert await store.claim("w", now=T0 + 10, lease=60, limit=10) == []
        await store.update_run(a[0], {"status": "succeeded"})
        assert [r.id for r in await store.claim("w", now=T0 + 11, lease=60, limit=10)] == [a[1]]
        # a later run waits while an earlier run of its key is not final, whatever its state
        for state in ("retrying", "waiting", "held", "queued"):
            await store.update_run(a[1], {"status": state, "due_at": T0 + 1000, "lease_owner": None})
            assert await store.claim("w", now=T0 + 12, lease=60, limit=10) == [], state
        await store.update_run(a[1], {"status": "failed"})
        await store.update_run(b[0], {"status": "dead_lettered"})
        assert [r.id for r in await store.claim("w", now=T0 + 13, lease=60, limit=10)] == [a[2], b[1]]

    @async_test
    async def test_ordering_keys_under_concurrent_workers(self, store: Store) -> None:
        expected: dict[str, list[int]] = {"A": [], "B": []}
        for i in range(4):
            for key in ("A", "B"):
                expected[key].append((await store.create_run(run(ordering_key=key), now=T0 + i)).run.seq)
        in_hand: dict[str, int] = {}
        order: dict[str, list[int]] = {"A": [], "B": []}
        overlap = 0
        done = 0

        async def worker(name: str) -> None:
            nonlocal overlap, done
            while done < 8:
                got = await store.claim(name, now=T0 + 100, lease=60, limit=2)
                for r in got:
                    key = str(r.ordering_key)
                    assert key not in in_hand, f"two runs of {key} at once"
                    in_hand[key] = r.seq
                    order[key].append(r.seq)
                overlap = max(overlap, len(in_hand))
                await asyncio.sleep(0.005)
                for r in got:
                    del in_hand[str(r.ordering_key)]
                    await store.update_run(r.id, {"status": "succeeded", "lease_owner": None})
                    done += 1
                if not got:
                    await asyncio.sleep(0.001)

        await asyncio.wait_for(asyncio.gather(*(worker(f"w{i}") for i in range(4))), timeout=20)
        assert order == expected
        assert overlap == 2  # key B ran alongside key A

    # ---- batch claims (issue 10 §4: a node claims what it has room for in one transaction) ----

    @async_test
    async def test_a_batch_claim_takes_one_run_per_ordering_key_and_leases_them_all(self, store: Store) -> None:
        made: list[RunRecord] = []
        for i in range(12):  # keys K0, K1, K2 in turn, with a run without a key after each third
            key = None if i % 4 == 3 else f"K{i % 4}"
            made.append((await store.create_run(run(ordering_key=key, input={"i": i}), now=T0 + i)).run)
        first = {r.ordering_key: r.seq for r in reversed(made) if r.ordering_key is not None}
        expected = [r.id for r in made if r.ordering_key is None or first[r.ordering_key] == r.seq]
        got = await store.claim("batch", now=T0 + 100, lease=30, limit=50)
        assert [r.id for r in got] == expected  # oldest first, a key's later runs wait for its first
        for r in got:
            stored = await store.get_run(r.id)
            assert stored is not None
            assert (stored.status, stored.lease_owner, stored.lease_expires) == ("running", "batch", T0 + 130)
            assert (r.status, r.lease_owner, r.lease_expires, r.started_at) == ("running", "batch", T0 + 130, T0 + 100)
        assert await store.claim("other", now=T0 + 100, lease=30, limit=50) == []

    @async_test
    async def test_a_claimed_run_tells_how_many_steps_its_journal_had(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run
        [fresh] = await store.claim("w", now=T0, lease=10)
        assert fresh.claim_steps == 0  # nothing to read back: the worker skips the journal read
        for key in ("a", "b"):
            await store.record_step(StepRecord(run_id=made.id, step_key=key, kind="set", status="succeeded"))
        [resumed] = await store.claim("w2", now=T0 + 10, lease=10)
        assert resumed.claim_steps == 2
        stored = await store.get_run(made.id)
        assert stored is not None and stored.claim_steps == 2

    @async_test
    async def test_concurrent_batch_claims_split_the_queue_without_overlap(self, store: Store) -> None:
        ids = [(await store.create_run(run(input={"i": i}), now=T0 + i)).run.id for i in range(60)]
        a, b = await asyncio.gather(
            store.claim("a", now=T0 + 100, lease=30, limit=32), store.claim("b", now=T0 + 100, lease=30, limit=32)
        )
        assert not {r.id for r in a} & {r.id for r in b}
        assert sorted(r.id for r in a + b) == sorted(ids[: len(a) + len(b)]) and len(a) + len(b) == 60
        for owner, got in (("a", a), ("b", b)):
            for r in got:
                stored = await store.get_run(r.id)
                assert stored is not None and (stored.lease_owner, stored.lease_expires) == (owner, T0 + 130)

    @async_test
    async def test_due_at_is_respected(self, store: Store) -> None:
        retrying = (await store.create_run(run(status="retrying", due_at=T0 + 50), now=T0)).run.id
        waiting = (await store.create_run(run(status="waiting", due_at=T0 + 60), now=T0)).run.id
        for_event = (await store.create_run(run(status="waiting"), now=T0)).run.id
        delayed = (await store.create_run(run(due_at=T0 + 70), now=T0)).run.id
        held = (await store.create_run(run(status="held"), now=T0)).run.id
        lease = 100_000.0  # no lease runs out in this test
        assert await store.claim("w", now=T0 + 49, lease=lease, limit=10) == []
        assert [r.id for r in await store.claim("w", now=T0 + 50, lease=lease, limit=10)] == [retrying]
        assert [r.id for r in await store.claim("w", now=T0 + 65, lease=lease, limit=10)] == [waiting]
        assert [r.id for r in await store.claim("w", now=T0 + 70, lease=lease, limit=10)] == [delayed]
        assert await store.claim("w", now=T0 + 10_000, lease=lease, limit=10) == []
        still = [await store.get_run(i) for i in (for_event, held)]
        assert [r.status for r in still if r is not None] == ["waiting", "held"]
        await store.update_run(retrying, {"status": "retrying", "due_at": None, "lease_owner": None})
        assert [r.id for r in await store.claim("w", now=T0 + 10_001, lease=lease)] == [retrying]

    # ---- journal and events ----

    @async_test
    async def test_record_step_keeps_journal_order_and_events(self, store: Store) -> None:
        assert await store.last_event_id() == 0
        one = (await store.create_run(run(), now=T0)).run.id
        two = (await store.create_run(run(), now=T0)).run.id
        for i, key in enumerate(("validate", "map", "post")):
            step = StepRecord(
                run_id=one,
                step_key=key,
                kind="http",
                status="succeeded",
                input={"i": i},
                output={"o": Decimal("1.50")},
                started_at=T0 + i,
                finished_at=T0 + i + 0.5,
            )
            emitted = [EventRecord(name=f"{key}.done", data={"i": i}, key="k", source_run_id=one, source_step=key)]
            saved = await store.record_step(step, emitted)
            assert saved.seq == i + 1 and saved.step_key == key
        other = await store.record_step(StepRecord(run_id=two, step_key="x", kind="map", status="skipped"))
        assert other.seq == 1
        journal = await store.journal(one)
        assert [s.step_key for s in journal] == ["validate", "map", "post"]
        assert [s.seq for s in journal] == [1, 2, 3]
        assert journal[1].input == {"i": 1} and same_json(journal[1].output, {"o": Decimal("1.50")})
        assert journal[2].started_at == T0 + 2 and journal[2].finished_at == T0 + 2.5
        assert await store.journal("missing") == []
        evs = await store.events_after(0)
        assert await store.last_event_id() == evs[-1].id
        assert [e.name for e in evs] == ["validate.done", "map.done", "post.done"]
        assert [e.id for e in evs] == sorted(e.id for e in evs) and len({e.id for e in evs}) == 3
        assert evs[0].source_run_id == one and evs[0].source_step == "validate" and evs[0].key == "k"
        assert evs[0].created_at == T0 + 0.5  # 0 means the step's finished_at
        assert [e.name for e in await store.events_after(evs[0].id, limit=1)] == ["map.done"]
        assert await store.events_after(evs[-1].id) == []

    @async_test
    async def test_record_step_is_atomic_with_its_events(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        step = StepRecord(run_id=made, step_key="a", kind="http", status="succeeded")
        good = EventRecord(name="ok", data=1)
        with pytest.raises((TypeError, ValueError)):
            await store.record_step(step, [good, EventRecord(name="bad", data=object())])
        assert await store.journal(made) == [] and await store.events_after(0) == []
        with pytest.raises(KeyError):
            await store.record_step(StepRecord(run_id="missing", step_key="a", kind="x", status="failed"), [good])
        assert await store.events_after(0) == []
        assert (await store.record_step(step, [good])).seq == 1

    @async_test
    async def test_write_journal_appends_steps_and_changes_the_run_in_one_transaction(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        await store.record_step(StepRecord(run_id=made, step_key="first", kind="map", status="succeeded"))

        def step(key: str, kind: str = "map") -> StepRecord:
            return StepRecord(run_id=made, step_key=key, kind=kind, status="succeeded", output={"k": Decimal("0.10")})

        entries = [
            (step("validate"), []),
            (step("emit", "emit"), [EventRecord(name="order.sent", data={"n": 1}, source_run_id=made)]),
            (step("post", "call"), []),
        ]
        await store.write_journal(made, entries, {"status": "succeeded", "output": {"id": 7}, "finished_at": T0 + 1})
        journal = await store.journal(made)
        assert [(s.step_key, s.seq) for s in journal] == [("first", 1), ("validate", 2), ("emit", 3), ("post", 4)]
        assert same_json(journal[3].output, {"k": Decimal("0.10")})
        assert [e.name for e in await store.events_after(0)] == ["order.sent"]
        ended = await store.get_run(made)
        assert ended is not None and ended.status == "succeeded" and ended.output == {"id": 7}
        assert ended.finished_at == T0 + 1

        # a value that is not JSON, or an unknown field, fails the whole write: nothing is appended
        bad = StepRecord(run_id=made, step_key="bad", kind="map", status="succeeded", output=object())
        with pytest.raises((TypeError, ValueError)):
            await store.write_journal(made, [(step("late"), []), (bad, [])], {"status": "failed"})
        with pytest.raises(ValueError):
            await store.write_journal(made, [(step("late"), [])], {"seq": 9})  # type: ignore[typeddict-unknown-key]
        with pytest.raises(ValueError):  # a step of another run
            other = StepRecord(run_id="someone-else", step_key="x", kind="map", status="succeeded")
            await store.write_journal(made, [(other, [])])
        assert len(await store.journal(made)) == 4
        assert (await store.get_run(made)).status == "succeeded"  # type: ignore[union-attr]
        with pytest.raises(KeyError):
            await store.write_journal("missing", [], {"status": "failed"})
        with pytest.raises(KeyError):
            await store.write_journal("missing", [])
        await store.write_journal(made, [], None)  # nothing to write is no error
        await store.write_journal(made, [(step("last"), [])])
        assert [s.seq for s in await store.journal(made)][-1] == 5

    @async_test
    async def test_write_journal_keeps_the_order_of_many_steps(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        entries = [
            (StepRecord(run_id=made, step_key=f"each[{i}]", kind="map", status="succeeded", output=i), [])
            for i in range(130)
        ]
        entries.insert(
            70,
            (
                StepRecord(run_id=made, step_key="emit", kind="emit", status="succeeded"),
                [EventRecord(name="e", data=1)],
            ),
        )
        await store.write_journal(made, entries)
        journal = await store.journal(made)
        assert [s.seq for s in journal] == list(range(1, 132))
        assert [s.step_key for s in journal] == [record.step_key for record, _ in entries]
        assert journal[130].output == 129

    @async_test
    async def test_write_journal_numbers_plain_steps_after_the_last_one(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        other = (await store.create_run(run(), now=T0)).run.id
        for key in ("a", "b"):
            await store.record_step(StepRecord(run_id=made, step_key=key, kind="map", status="succeeded"))
        await store.record_step(StepRecord(run_id=other, step_key="x", kind="map", status="succeeded"))
        entries = [
            (StepRecord(run_id=made, step_key=f"s{i}", kind="call", status="succeeded", output=i), [])
            for i in range(70)
        ]
        await store.write_journal(made, entries, {"status": "succeeded"})
        journal = await store.journal(made)
        assert [s.seq for s in journal] == list(range(1, 73))
        assert [s.step_key for s in journal] == ["a", "b", *(f"s{i}" for i in range(70))]
        assert journal[-1].output == 69
        assert [s.seq for s in await store.journal(other)] == [1]

    @async_test
    async def test_concurrent_steps_of_one_run_get_distinct_seqs(self, store: Store) -> None:
        made = (await store.create_run(run(), now=T0)).run.id
        saved = await asyncio.gather(
            *(
                store.record_step(StepRecord(run_id=made, step_key=f"each[{i}]", kind="x", status="succeeded"))
                for i in range(12)
            )
        )
        assert sorted(s.seq for s in saved) == list(range(1, 13))
        assert [s.seq for s in await store.journal(made)] == list(range(1, 13))

    # ---- dead letters ----

    @async_test
    async def test_dead_letters_list_and_replay(self, store: Store) -> None:
        one = (await store.create_run(run("f1"), now=T0)).run.id
        two = (await store.create_run(run("f1"), now=T0)).run.id
        three = (await store.create_run(run("f2"), now=T0)).run.id
        await store.claim("w", now=T0, lease=60, limit=3)
        await store.dead_letter(one, "retries exhausted", {"status": 503, "amount": Decimal("0.10")}, now=T0 + 10)
        await store.dead_letter(three, "invalid", None, now=T0 + 20)
        dead = await store.get_run(one)
        assert dead is not None
        assert (dead.status, dead.finished_at, dead.lease_owner, dead.lease_expires) == (
            "dead_lettered",
            T0 + 10,
            None,
            None,
        )
        listed = await store.list_dead_letters()
        assert [d.run_id for d in listed] == [three, one]
        assert listed[1].flow == "f1" and listed[1].reason == "retries exhausted"
        assert same_json(listed[1].error, {"status": 503, "amount": Decimal("0.10")})
        assert listed[0].error is None and listed[1].created_at == T0 + 10 and listed[1].replayed_at is None
        assert [d.run_id for d in await store.list_dead_letters(flow="f1")] == [one]
        assert [d.run_id for d in await store.list_dead_letters(limit=1)] == [three]
        await store.mark_replayed(one, "replay-1", now=T0 + 30)
        assert [d.run_id for d in await store.list_dead_letters()] == [three]
        everything = await store.list_dead_letters(include_replayed=True)
        replayed = next(d for d in everything if d.run_id == one)
        assert (replayed.replayed_at, replayed.replay_run_id) == (T0 + 30, "replay-1")
        still = await store.get_run(two)
        assert still is not None and still.status == "running"
        with pytest.raises(KeyError):
            await store.mark_replayed(two, "x", now=T0)
        with pytest.raises(KeyError):
            await store.dead_letter("missing", "x", None, now=T0)

    # ---- trigger state ----

    @async_test
    async def test_accept_poll_skips_seen_items_and_stores_the_cursor(self, store: Store) -> None:
        assert await store.get_cursor("poll-1") is None
        first = await store.accept_poll(
            "poll-1", [("a", run(input={"a": 1})), ("b", run(input={"b": 1}))], {"after": 2}, now=T0
        )
        assert [r.run.input for r in first] == [{"a": 1}, {"b": 1}] and all(r.created for r in first)
        assert await store.get_cursor("poll-1") == {"after": 2}
        second = await store.accept_poll(
            "poll-1",
            [("a", run(input={"a": 2})), ("c", run(input={"c": 1})), ("c", run(input={"c": 2}))],
            {"after": Decimal("3.5")},
            now=T0 + 1,
        )
        assert [r.run.input for r in second] == [{"c": 1}]
        assert same_json(await store.get_cursor("poll-1"), {"after": Decimal("3.5")})
        other = await store.accept_poll("poll-2", [("a", run(input={"a": 3}))], None, now=T0 + 2)
        assert len(other) == 1  # keys are per trigger
        assert len(await store.list_runs(RunFilter(flow="orders"))) == 4
        keyed = await store.accept_poll("poll-3", [("z", run(idempotency_key="k1"))], 1, now=T0)
        dup = await store.accept_poll("poll-3", [("y", run(idempotency_key="k1"))], 2, now=T0)
        assert keyed[0].created and not dup[0].created and dup[0].run.id == keyed[0].run.id

    @async_test
    async def test_accept_poll_failure_leaves_neither_runs_nor_cursor(self, store: Store) -> None:
        await store.accept_poll("poll", [("old", run())], "c1", now=T0)
        with pytest.raises((TypeError, ValueError)):
            await store.accept_poll(
                "poll", [("a", run(input={"fine": 1})), ("b", run(input={"bad": object()}))], "c2", now=T0
            )
        assert await store.get_cursor("poll") == "c1"
        assert len(await store.list_runs(RunFilter())) == 1
        again = await store.accept_poll("poll", [("a", run(input={"fine": 1}))], "c2", now=T0)
        assert len(again) == 1 and again[0].created  # "a" was not marked seen by the failed call

    @async_test
    async def test_record_fire_once_per_fire_time(self, store: Store) -> None:
        first = await store.record_fire("nightly", T0, run("report"), now=T0)
        assert first is not None and first.created and first.run.flow == "report"
        assert await store.record_fire("nightly", T0, run("report"), now=T0 + 1) is None
        assert await store.record_fire("nightly", T0 + 86400, run("report"), now=T0 + 86400) is not None
        assert await store.record_fire("hourly", T0, run("report"), now=T0) is not None
        results = await asyncio.gather(*(store.record_fire("burst", T0, run(), now=T0) for _ in range(10)))
        assert sum(r is not None for r in results) == 1
        assert len(await store.list_runs(RunFilter(flow="report"))) == 3

    # ---- entity state ----

    @async_test
    async def test_set_state_compares_and_sets(self, store: Store) -> None:
        assert await store.get_state("order", "4711") is None
        assert await store.set_state("order", "4711", "new", expected=None, run_id="r1", now=T0)
        assert not await store.set_state("order", "4711", "other", expected=None, run_id="r2", now=T0)
        assert not await store.set_state("order", "4711", "paid", expected="shipped", run_id="r2", now=T0)
        assert await store.set_state("order", "4711", "paid", expected="new", run_id="r2", now=T0)
        assert await store.get_state("order", "4711") == "paid"
        assert await store.get_state("order", "4712") is None and await store.get_state("invoice", "4711") is None
        wins = await asyncio.gather(
            *(store.set_state("order", "4711", f"s{i}", expected="paid", run_id="r", now=T0) for i in range(10))
        )
        assert sum(wins) == 1
        assert await store.get_state("order", "4711") == f"s{wins.index(True)}"

    # ---- listing ----

    @async_test
    async def test_list_runs_filters(self, store: Store) -> None:
        a = (await store.create_run(run("f1", correlation_id="c1", business_keys={"order": "1"}), now=T0)).run
        b = (await store.create_run(run("f2", correlation_id="c1", business_keys={"order": "2"}), now=T0 + 10)).run
        c = (
            await store.create_run(
                run("f1", correlation_id="c2", business_keys={"order": "2", "customer": "9"}), now=T0 + 20
            )
        ).run
        await store.update_run(a.id, {"status": "failed"})
        await store.update_run(c.id, {"status": "succeeded"})

        async def ids(**kw: Any) -> list[str]:
            return [r.id for r in await store.list_runs(RunFilter(**kw))]

        assert await ids() == [c.id, b.id, a.id]
        assert await ids(flow="f1") == [c.id, a.id]
        assert await ids(status=["failed", "queued"]) == [b.id, a.id]
        assert await ids(status=[]) == []
        assert await ids(correlation_id="c1") == [b.id, a.id]
        assert await ids(business_key=("order", "2")) == [c.id, b.id]
        assert await ids(business_key=("customer", "9")) == [c.id]
        assert await ids(business_key=("order", "9")) == []
        assert await ids(since=T0 + 10) == [c.id, b.id]
        assert await ids(until=T0 + 10) == [a.id]
        assert await ids(since=T0 + 5, until=T0 + 15) == [b.id]
        assert await ids(flow="f1", status=["succeeded"], business_key=("order", "2")) == [c.id]
        listed = await store.list_runs(RunFilter(business_key=("order", "2")))
        assert listed[0].business_keys == {"order": "2", "customer": "9"}

    @async_test
    async def test_list_runs_by_parent(self, store: Store) -> None:
        parent = (await store.create_run(run("f1"), now=T0)).run
        first = (await store.create_run(run("f2", parent_run_id=parent.id), now=T0 + 1)).run
        await store.create_run(run("f3"), now=T0 + 2)  # no parent
        other = (await store.create_run(run("f2", parent_run_id=first.id), now=T0 + 3)).run  # a grandchild
        second = (await store.create_run(run("f3", parent_run_id=parent.id), now=T0 + 4)).run

        async def ids(**kw: Any) -> list[str]:
            return [r.id for r in await store.list_runs(RunFilter(**kw))]

        assert await ids(parent=parent.id) == [second.id, first.id]  # children only, newest first
        assert await ids(parent=first.id) == [other.id]
        assert await ids(parent=second.id) == [] and await ids(parent="no-such-run") == []
        assert await ids(parent=parent.id, flow="f3") == [second.id]
        assert await ids(parent=parent.id, limit=1) == [second.id]
        assert await ids(parent=parent.id, before_seq=second.seq) == [first.id]

    @async_test
    async def test_list_runs_pages_by_seq(self, store: Store) -> None:
        made = [(await store.create_run(run(), now=T0 + i)).run for i in range(7)]
        pages: list[list[RunRecord]] = []
        before: int | None = None
        while True:
            page = await store.list_runs(RunFilter(limit=3, before_seq=before))
            if not page:
                break
            pages.append(page)
            before = page[-1].seq
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [r.id for p in pages for r in p] == [r.id for r in reversed(made)]

    # ---- health ----

    @async_test
    async def test_queue_stats(self, store: Store) -> None:
        assert await store.queue_stats(now=T0) == {"depth": 0.0, "oldest_age": 0.0, "running": 0.0}
        await store.create_run(run(), now=T0 + 100)
        await store.create_run(run(status="retrying", due_at=T0 + 150), now=T0)
        await store.create_run(run(status="waiting"), now=T0)
        await store.create_run(run(status="held"), now=T0)
        await store.create_run(run(due_at=T0 + 250), now=T0 + 90)
        await store.create_run(run(), now=T0 + 120)
        done = (await store.create_run(run(), now=T0)).run.id
        await store.update_run(done, {"status": "succeeded"})
        [busy] = await store.claim("w", now=T0 + 120, lease=180)  # the run created at T0 + 100
        assert await store.queue_stats(now=T0 + 200) == {"depth": 2.0, "oldest_age": 80.0, "running": 1.0}
        # T0 + 300: the lease ran out, the delayed run is due
        assert await store.queue_stats(now=T0 + 300) == {"depth": 4.0, "oldest_age": 180.0, "running": 0.0}
        assert busy.created_at == T0 + 100

    @async_test
    async def test_pending_counts_and_dead_letter_depth(self, store: Store) -> None:
        assert await store.pending_counts() == {} and await store.dead_letter_depth() == {}
        for status in ("held", "held", "retrying", "waiting", "queued", "running"):
            await store.create_run(run(status=status), now=T0)
        await store.create_run(run("invoices", status="waiting", meta={"parked": {"machine": "m", "key": "1"}}), now=T0)
        await store.create_run(run("invoices", status="waiting", meta={"note": '"parked":{ in text'}), now=T0)
        done = (await store.create_run(run("invoices"), now=T0)).run.id
        await store.update_run(done, {"status": "succeeded"})
        assert await store.pending_counts() == {
            ("orders", "held"): 2,
            ("orders", "retrying"): 1,
            ("orders", "waiting"): 1,
            ("invoices", "parked"): 1,
            ("invoices", "waiting"): 1,
        }
        dead = [(await store.create_run(run(flow), now=T0)).run.id for flow in ("orders", "orders", "invoices")]
        for run_id in dead:
            await store.dead_letter(run_id, "failed", None, now=T0 + 1)
        await store.mark_replayed(dead[0], "replay-1", now=T0 + 2)
        assert await store.dead_letter_depth() == {"orders": 1, "invoices": 1}

    @async_test
    async def test_run_counts_by_flow_status_and_time_bucket(self, store: Store) -> None:
        assert await store.run_counts(since=T0, bucket=3600) == {}
        await store.create_run(run(), now=T0 - 1)  # before the window
        for offset, flow, status in [
            (0, "orders", "queued"),
            (10, "orders", "queued"),
            (3599.5, "orders", "held"),
            (3600, "orders", "queued"),
            (7300, "invoices", "queued"),
        ]:
            await store.create_run(run(flow, status=status), now=T0 + offset)
        assert await store.run_counts(since=T0, bucket=3600) == {
            ("orders", "queued", 0): 2,
            ("orders", "held", 0): 1,
            ("orders", "queued", 1): 1,
            ("invoices", "queued", 2): 1,
        }
        assert await store.run_counts(since=T0 + 3600, bucket=60) == {
            ("orders", "queued", 0): 1,
            ("invoices", "queued", 61): 1,
        }

    @async_test
    async def test_decimals_and_nested_values_round_trip(self, store: Store) -> None:
        made = (
            await store.create_run(
                run(input=DECIMALS, meta={"d": DECIMALS}, headers={"x": "ü"}, idempotency_key="d"), now=T0
            )
        ).run
        assert same_json(made.input, DECIMALS)
        got = await store.get_run(made.id)
        assert got is not None and same_json(got.input, DECIMALS) and same_json(got.meta, {"d": DECIMALS})
        assert isinstance(got.input["amount"], Decimal) and str(got.input["scaled"]) == "1.10"
        assert isinstance(got.input["big_int"], int) and got.input["nested"]["lines"][0]["qty"] == 3
        assert got.headers == {"x": "ü"}
        await store.update_run(made.id, {"output": DECIMALS, "error": {"detail": DECIMALS}})
        got = await store.get_run(made.id)
        assert got is not None and same_json(got.output, DECIMALS) and same_json(got.error, {"detail": DECIMALS})
        await store.record_step(
            StepRecord(run_id=made.id, step_key="s", kind="map", status="succeeded", input=DECIMALS, output=DECIMALS),
            [EventRecord(name="e", data=DECIMALS)],
        )
        [step] = await store.journal(made.id)
        assert same_json(step.input, DECIMALS) and same_json(step.output, DECIMALS)
        [ev] = await store.events_after(0)
        assert same_json(ev.data, DECIMALS)
        await store.accept_poll("p", [], DECIMALS, now=T0)
        assert same_json(await store.get_cursor("p"), DECIMALS)
        found = await store.find_run("orders", "d")
        assert found is not None and same_json(found.input, DECIMALS)

    @async_test
    async def test_ping_and_closed_store(self, store: Store, make_store: MakeStore) -> None:
        assert await store.ping() is True
        fresh = make_store()
        with pytest.raises(StoreError):
            await fresh.get_run("x")  # not opened
        assert await fresh.ping() is False
        await fresh.open()
        await fresh.open()  # idempotent
        assert await fresh.ping() is True
        await fresh.close()
        await fresh.close()
        with pytest.raises(StoreError):
            await fresh.create_run(run(), now=T0)
        assert await fresh.ping() is False


async def _drain(stores: list[Store], *, now: float) -> list[str]:
    """Claim with one worker per store entry until nothing is left; every id claimed, in claim order."""
    claimed: list[str] = []

    async def worker(store: Store, name: str) -> None:
        while True:
            got = await store.claim(name, now=now, lease=600, limit=3)
            if not got:
                return
            claimed.extend(r.id for r in got)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate(stores)))
    return claimed


class SharedDatabaseContract:
    """Tests for stores that several instances (threads, processes, nodes) open on one database."""

    @async_test
    async def test_two_instances_create_one_run_per_key(self, store: Store, make_store: MakeStore) -> None:
        async with opened(make_store) as other:
            results = await asyncio.gather(
                *(
                    s.create_run(run(idempotency_key="same", request_hash="h"), now=T0)
                    for _ in range(10)
                    for s in (store, other)
                )
            )
        assert sum(r.created for r in results) == 1
        assert len({r.run.id for r in results}) == 1
        assert len(await store.list_runs(RunFilter())) == 1

    @async_test
    async def test_stalls_survive_a_new_store_instance(self, store: Store, make_store: MakeStore) -> None:
        made = (await store.create_run(run(), now=T0)).run
        await store.claim("w", now=T0, lease=10)
        await store.claim("w", now=T0 + 10, lease=10)
        async with opened(make_store) as restarted:  # a restarted node on the same database
            [taken] = await restarted.claim("w2", now=T0 + 20, lease=10)
            assert taken.id == made.id and taken.stalls == 2
            stored = await restarted.get_run(made.id)
            assert stored is not None and stored.stalls == 2
        assert (await store.get_run(made.id)) == stored

    @async_test
    async def test_two_instances_never_claim_a_run_twice(self, store: Store, make_store: MakeStore) -> None:
        ids = {(await store.create_run(run(), now=T0)).run.id for _ in range(40)}
        async with opened(make_store) as other:
            claimed = await _drain([store, other] * 4, now=T0 + 1)
        assert sorted(claimed) == sorted(ids)

    @async_test
    async def test_two_instances_batch_claiming_keep_ordering_keys(self, store: Store, make_store: MakeStore) -> None:
        """Two nodes claim batches from one queue and finish what they claimed: no run twice, one run
        per ordering key at a time, each key's runs in acceptance order."""
        expected: dict[str, list[int]] = {}
        everything: set[str] = set()
        for i in range(8):
            for key in ("A", "B", "C", None):
                made = (await store.create_run(run(ordering_key=key, input={"i": i}), now=T0 + i)).run
                everything.add(made.id)
                if key is not None:
                    expected.setdefault(key, []).append(made.seq)
        order: dict[str, list[int]] = {key: [] for key in expected}
        in_hand: dict[str, int] = {}
        claimed: list[str] = []

        async def node(instance: Store, name: str) -> None:
            idle = 0
            while idle < 20:
                got = await instance.claim(name, now=T0 + 100, lease=60, limit=16)
                idle = 0 if got else idle + 1
                for r in got:
                    claimed.append(r.id)
                    if r.ordering_key is not None:
                        assert r.ordering_key not in in_hand, f"two runs of {r.ordering_key} at once"
                        in_hand[r.ordering_key] = r.seq
                        order[r.ordering_key].append(r.seq)
                await asyncio.sleep(0.002)
                for r in got:
                    in_hand.pop(str(r.ordering_key), None)
                    await instance.update_run(r.id, {"status": "succeeded", "lease_owner": None})
                await asyncio.sleep(0)

        async with opened(make_store) as other:
            await asyncio.wait_for(asyncio.gather(node(store, "n1"), node(other, "n2")), timeout=30)
        assert sorted(claimed) == sorted(everything)
        assert order == expected

    @async_test
    async def test_two_instances_record_a_fire_once(self, store: Store, make_store: MakeStore) -> None:
        async with opened(make_store) as other:
            results = await asyncio.gather(
                *(s.record_fire("nightly", T0, run("report"), now=T0) for _ in range(5) for s in (store, other))
            )
            wins = await asyncio.gather(
                *(
                    s.set_state("order", "1", f"s{i}", expected=None, run_id="r", now=T0)
                    for i in range(5)
                    for s in (store, other)
                )
            )
        assert sum(r is not None for r in results) == 1
        assert sum(wins) == 1

    @async_test
    async def test_reopen_keeps_data_and_migrations_are_idempotent(self, store: Store, make_store: MakeStore) -> None:
        made = (await store.create_run(run(idempotency_key="k"), now=T0)).run
        both = [make_store(), make_store()]
        await asyncio.gather(*(s.open() for s in both))  # two opens at once, on a migrated database
        try:
            for s in both:
                assert await s.get_run(made.id) == made
            assert await both[0].find_run("orders", "k") == made
        finally:
            await asyncio.gather(*(s.close() for s in both))


class SqlStoreContract:
    """Tests of the SQL stores' migrations (`runtime.store.migrations`)."""

    @async_test
    async def test_first_open_from_two_instances_migrates_once(self, make_store: MakeStore) -> None:
        stores = [make_store(), make_store()]
        await asyncio.gather(*(s.open() for s in stores))  # an empty database, opened twice at once
        try:
            assert await _versions(stores[0]) == [m.version for m in MIGRATIONS]
            assert await stores[0]._write(lambda c: apply(c, now=T0)) == []  # type: ignore[attr-defined]
            made = await asyncio.gather(*(s.create_run(run(), now=T0) for s in stores))
            assert all(r.created for r in made)
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        async with opened(make_store) as again:
            assert await _versions(again) == [m.version for m in MIGRATIONS]
            assert len(await again.list_runs(RunFilter())) == 2

    @async_test
    async def test_later_migrations_append(self, make_store: MakeStore) -> None:
        upgraded: list[str] = []

        def add_column(conn: Connection) -> None:
            upgraded.append(conn.dialect.name)
            conn.exec_driver_sql("ALTER TABLE syncline_runs ADD COLUMN note TEXT")

        newer = (*MIGRATIONS, Migration(LATEST + 1, "runs.note", add_column))
        async with opened(make_store) as store:  # at LATEST
            applied = await store._write(lambda c: apply(c, now=T0, migrations=newer))  # type: ignore[attr-defined]
            assert applied == [LATEST + 1] and len(upgraded) == 1
            assert await store._write(lambda c: apply(c, now=T0, migrations=newer)) == []  # type: ignore[attr-defined]
            assert await _versions(store) == [m.version for m in newer]
            with pytest.raises(StoreError, match="newer"):
                await store._write(lambda c: apply(c, now=T0))  # type: ignore[attr-defined]

    @async_test
    async def test_migration_2_adds_the_stall_count_to_existing_runs(self, make_store: MakeStore) -> None:
        async with opened(make_store) as store:
            made = (await store.create_run(run(), now=T0)).run
            await store.claim("w", now=T0, lease=10)

            def downgrade(conn: Connection) -> None:  # back to the shape of version 1
                for column in ("stalls", "claim_steps"):
                    conn.exec_driver_sql(f"ALTER TABLE syncline_runs DROP COLUMN {column}")
                conn.exec_driver_sql("DROP TABLE syncline_outbox")  # migration 3
                conn.exec_driver_sql("DROP INDEX ix_syncline_runs_parent")  # migration 4
                conn.exec_driver_sql("DELETE FROM syncline_schema_version WHERE version > 1")

            await store._write(downgrade)  # type: ignore[attr-defined]
            assert await _versions(store) == [1]
            assert await store._write(lambda c: apply(c, now=T0)) == [2, 3, 4]  # type: ignore[attr-defined]
            stored = await store.get_run(made.id)
            assert stored is not None and stored.stalls == 0 and stored.status == "running"
            [taken] = await store.claim("w", now=T0 + 10, lease=10)
            assert taken.stalls == 1

    @async_test
    async def test_migration_4_indexes_runs_by_parent(self, make_store: MakeStore) -> None:
        async with opened(make_store) as store:
            parent = (await store.create_run(run(), now=T0)).run
            child = (await store.create_run(run(parent_run_id=parent.id), now=T0)).run

            def downgrade(conn: Connection) -> None:  # back to the shape of version 3
                conn.exec_driver_sql("DROP INDEX ix_syncline_runs_parent")
                conn.exec_driver_sql("DELETE FROM syncline_schema_version WHERE version > 3")

            def indexes(conn: Connection) -> set[str]:
                return {str(ix["name"]) for ix in inspect(conn).get_indexes("syncline_runs")}

            await store._write(downgrade)  # type: ignore[attr-defined]
            assert "ix_syncline_runs_parent" not in await store._read(indexes)  # type: ignore[attr-defined]
            assert await store._write(lambda c: apply(c, now=T0)) == [4]  # type: ignore[attr-defined]
            assert "ix_syncline_runs_parent" in await store._read(indexes)  # type: ignore[attr-defined]
            assert [r.id for r in await store.list_runs(RunFilter(parent=parent.id))] == [child.id]


async def _versions(store: Store) -> list[int]:
    query = select(schema_version.c.version).order_by(schema_version.c.version)
    return list(await store._read(lambda c: c.execute(query).scalars().all()))  # type: ignore[attr-defined]
