"""Run listing at scale: the console's and the admin API's run queries on 1,000,000 runs in SQLite.

Fills a SQLite store (created by `SqlStore.open`, so with its real schema and indexes) with runs
over five flows, realistic statuses (94% succeeded; dead letters, holds and exceptions rare), a
correlation id and an `order` business key each, then times `Store.list_runs` pages of 50, as the
console's runs list asks for them (`before_seq` keyset paging, newest first): the first page, a
page deep in the history, and each filter alone and combined. A time filter (`until`) deep in the
history is measured twice: the store query alone, and the console's way (`seq_before` bisects `seq`
for the keyset start first). The overview's count of the last day's runs by flow, status and hour
(`Store.run_counts`, every run of the history in the window) is timed last. Prints the median and
worst of the rounds per query, in ms, and whether it is under the console's bar (200 ms).

    python bench/store_runs_keyset.py            # 1,000,000 runs, 7 rounds per query
    python bench/store_runs_keyset.py --smoke    # 20,000 runs, 2 rounds (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.console.views import seq_before
from runtime.store.base import RunFilter, RunRecord
from runtime.store.sql import SqlStore

BAR_MS = 200.0
PAGE = 50
FLOWS = [("webshop-order-to-erp", 0.55), ("customer-crm-to-erp", 0.25), ("billing-invoice-poll", 0.15)]
FLOWS += [("customer-sync-hourly", 0.049), ("rare-audit", 0.001)]
STATUSES = [("succeeded", 0.94), ("failed", 0.02), ("dead_lettered", 0.01), ("exception", 0.02), ("filtered", 0.009)]
STATUSES += [("held", 0.001)]
INPUT = '{"id":"%d","customer":{"id":"C-%d","email":"x@example.com"},"lines":[{"sku":"A-1","qty":2}]}'
SPACING = 0.05  # seconds between two accepted runs (1,000,000 runs: about 14 hours)


def pick(choices: list[tuple[str, float]], rng: random.Random) -> str:
    point = rng.random()
    for name, share in choices:
        point -= share
        if point < 0:
            return name
    return choices[-1][0]


def rows(count: int, t0: float, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(count):
        created = t0 + i * SPACING
        status = pick(STATUSES, rng)
        yield (
            f"{i:026d}",
            pick(FLOWS, rng),
            "v1",
            "webhook",
            status,
            INPUT % (i // 2, i % 997),
            "{}",
            f"corr-{i:08d}",
            f"key-{i}",
            None,
            None,
            1,
            None,
            None,
            None,
            created,
            created,
            created + 0.02,
            '{"id":"SO-1"}',
            None,
            None,
            None,
            None,
            "{}",
        )


COLUMNS = (
    "id, flow, flow_version, trigger, status, input, headers, correlation_id, idempotency_key, request_hash, "
    "ordering_key, attempt, due_at, lease_owner, lease_expires, created_at, started_at, finished_at, output, error, "
    "parent_run_id, replay_of, replay_from_step, meta"
)


def fill(path: Path, count: int, t0: float) -> float:
    started = time.perf_counter()
    rng = random.Random(4711)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" * 24)
    batch: list[tuple[object, ...]] = []
    for row in rows(count, t0, rng):
        batch.append(row)
        if len(batch) == 50_000:
            _write(conn, marks, batch)
            batch = []
    _write(conn, marks, batch)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def _write(conn: sqlite3.Connection, marks: str, batch: list[tuple[object, ...]]) -> None:
    conn.executemany(f"INSERT INTO syncline_runs ({COLUMNS}) VALUES ({marks})", batch)
    conn.executemany(
        "INSERT INTO syncline_run_keys (run_id, name, value) VALUES (?, 'order', ?)",
        [(row[0], str(int(str(row[0])) // 2)) for row in batch],
    )
    conn.commit()


async def console_page(store: SqlStore, query: RunFilter) -> list[RunRecord]:
    """The console's way: with `until`, the keyset starts near it (`seq_before`), then one page."""
    if query.until is not None:
        bound = await seq_before(store, query.until)
        if bound is not None and (query.before_seq is None or bound < query.before_seq):
            query = dataclasses.replace(query, before_seq=bound)
    return await store.list_runs(query)


async def measure(
    store: SqlStore, name: str, query: RunFilter, rounds: int, console: bool
) -> tuple[str, float, float, int]:
    read = console_page if console else (lambda s, q: s.list_runs(q))
    await read(store, query)  # warm the page cache for this query's index
    times = []
    found = 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = len(await read(store, query))
        times.append((time.perf_counter() - started) * 1000)
    return name, statistics.median(times), max(times), found


async def measure_counts(store: SqlStore, end: float, rounds: int) -> tuple[str, float, float, int]:
    """The overview's query: runs per flow, status and hour of the last day (`Store.run_counts`)."""
    times = []
    found = 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = sum((await store.run_counts(since=end - 86_400, bucket=3600)).values())
        times.append((time.perf_counter() - started) * 1000)
    return "overview counts (every run of the last day)", statistics.median(times), max(times), found


async def main_async(count: int, rounds: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.db"
        store = SqlStore(f"sqlite:///{path}")
        await store.open()  # the real schema and indexes
        await store.close()
        t0 = 1_767_225_600.0
        seconds = fill(path, count, t0)
        print(f"filled {count:,} runs in {seconds:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
        store = SqlStore(f"sqlite:///{path}")
        await store.open()
        end = t0 + count * SPACING
        middle = t0 + count * SPACING / 2
        deep = max(count // 100, 2)
        queries = [
            ("newest page", RunFilter(limit=PAGE)),
            ("deep page (before_seq near the oldest)", RunFilter(limit=PAGE, before_seq=deep)),
            ("flow", RunFilter(flow="customer-crm-to-erp", limit=PAGE)),
            ("flow, deep page", RunFilter(flow="customer-crm-to-erp", limit=PAGE, before_seq=deep)),
            ("status dead_lettered", RunFilter(status=["dead_lettered"], limit=PAGE)),
            ("status held (0.1%)", RunFilter(status=["held"], limit=PAGE)),
            ("flow + status", RunFilter(flow="webshop-order-to-erp", status=["dead_lettered"], limit=PAGE)),
            ("rare flow + rare status", RunFilter(flow="rare-audit", status=["exception"], limit=PAGE)),
            ("correlation id", RunFilter(correlation_id=f"corr-{count // 3:08d}", limit=PAGE)),
            ("business key", RunFilter(business_key=("order", str(count // 5)), limit=PAGE)),
            ("since (last hour)", RunFilter(since=end - 3600, limit=PAGE)),
            ("until (the middle of the history)", RunFilter(until=middle, limit=PAGE)),
            ("since+until (an hour in the middle)", RunFilter(since=middle - 3600, until=middle, limit=PAGE)),
            (
                "flow + status + since",
                RunFilter(flow="customer-crm-to-erp", status=["failed"], since=middle, limit=PAGE),
            ),
        ]
        results = [await measure(store, name, query, rounds, False) for name, query in queries]
        timed = [q for q in queries if q[1].until is not None]
        results += [await measure(store, f"{name}, console", query, rounds, True) for name, query in timed]
        results.append(await measure_counts(store, end, rounds))
        await store.close()
    width = max(len(name) for name, *_ in results)
    print(f"{'query':<{width}}  median ms  worst ms     rows  under {BAR_MS:.0f} ms")
    for name, median, worst, found in results:
        print(f"{name:<{width}}  {median:9.2f}  {worst:8.2f}  {found:7d}  {'yes' if worst < BAR_MS else 'NO'}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20,000 runs, 2 rounds (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs in the store (default 1,000,000)")
    args = parser.parse_args(argv)
    count = args.runs or (20_000 if args.smoke else 1_000_000)
    return asyncio.run(main_async(count, 2 if args.smoke else 7))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
