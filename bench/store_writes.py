"""Store writes: runs/s for create_run + 3 record_step + update_run, on every store.

Each "run" is the journal traffic of one three-step run: `create_run` (with an idempotency key and a
business key), three `record_step` calls, and the final `update_run` — five committed writes.
Stores: memory, SQLite with `synchronous=FULL` (the default) and `NORMAL`, and PostgreSQL on
127.0.0.1:5432 (a throwaway database; skipped with a note when unreachable). Each is measured with
one task and with 32 concurrent tasks (the SQLite writer then commits several writes at once).
Prints the median runs/s of the rounds.

    python bench/store_writes.py            # 1,000 runs per measurement, 3 rounds
    python bench/store_writes.py --smoke    # 200 runs, 1 round (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.store.base import NewRun, StepRecord, Store
from runtime.store.memory import MemoryStore
from runtime.store.sql import SqlStore

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
ORDER: dict[str, Any] = {
    "id": "4711",
    "customer": {"id": "C-42", "name": "Ada"},
    "currency": "eur",
    "lines": [
        {"sku": "A-1", "qty": 2, "unit_price": Decimal("19.99")},
        {"sku": "B-7", "qty": 1, "unit_price": Decimal("5.50")},
    ],
}


async def one_run(store: Store, key: str) -> None:
    now = time.time()
    created = await store.create_run(
        NewRun(flow="bench", input=ORDER, idempotency_key=key, business_keys={"order": key}), now=now
    )
    run_id = created.run.id
    for step in ("validate", "map", "post"):
        await store.record_step(
            StepRecord(
                run_id=run_id,
                step_key=step,
                kind="http",
                status="succeeded",
                input=ORDER,
                output={"ok": True},
                started_at=now,
                finished_at=time.time(),
            )
        )
    await store.update_run(run_id, {"status": "succeeded", "output": {"erp_id": "SO-1"}, "finished_at": time.time()})


async def measure(store: Store, runs: int, tasks: int) -> float:
    """runs/s for `runs` runs spread over `tasks` concurrent tasks."""
    tag = secrets.token_hex(4)
    counter = iter(range(runs))

    async def worker() -> None:
        for i in counter:
            await one_run(store, f"{tag}-{i}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return runs / (time.perf_counter() - started)


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database URL, or None when the server is unreachable."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except Exception as exc:
        print(f"postgresql: unreachable ({' '.join(str(exc).split())[:80]}); skipped")
        yield None
        return
    name = f"syncline_bench_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench(name: str, make: Callable[[], Store], runs: int, rounds: int) -> None:
    for tasks in (1, 32):
        figures: list[float] = []
        for _ in range(rounds):
            store = make()
            await store.open()
            try:
                figures.append(await measure(store, runs, tasks))
            finally:
                await store.close()
        spread = f"  (rounds: {', '.join(f'{f:,.0f}' for f in figures)})" if rounds > 1 else ""
        print(
            f"{name:<22} {tasks:>3} task{'s' if tasks > 1 else ' '}  {statistics.median(figures):>9,.0f} runs/s{spread}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 runs, 1 round")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (200 if args.smoke else 1000)
    rounds = args.rounds or (1 if args.smoke else 3)
    print(f"store writes: create_run + 3 record_step + update_run, {runs} runs, median of {rounds}")
    with tempfile.TemporaryDirectory() as folder, postgres_database() as pg_url:
        stores: list[tuple[str, Callable[[], Store]]] = [
            ("memory", MemoryStore),
            ("sqlite FULL", lambda: SqlStore(f"sqlite:///{folder}/full.db")),
            ("sqlite NORMAL", lambda: SqlStore(f"sqlite:///{folder}/normal.db?synchronous=normal")),
        ]
        if pg_url is not None:
            url = pg_url
            stores.append(("postgresql", lambda: SqlStore(url)))
        for name, make in stores:
            asyncio.run(bench(name, make, runs, rounds))


if __name__ == "__main__":
    main()
