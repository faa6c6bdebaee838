"""P10: a 1,000,000-line CSV dropped into a `file` trigger's folder, one run per record.

On a fresh `syncline serve` (SQLite store in the project, journal on, the project's default
`service.max_backlog` of 10,000: the source pauses while the node is that far behind), the CSV is
written under a temporary name and renamed into the folder. Reported:

- intake: records accepted per second, from the rename until the file is in done/ (every record
  committed as a run, batch by batch with the cursor);
- drain: runs finished per second over the whole drop (the flow is one `set` step: the node's own
  cost per run, no outside system);
- peak RSS of the serve process (VmHWM from /proc), the bar being < 200 MiB whatever the file size;
- the source alone, in this process with a context that only counts (no store): the records/s the
  parser and batching give, and its tracemalloc-free RSS growth.

    python bench/p10_csv_drop.py [--lines 1000000] [--batch 500] [--concurrency 64] [--smoke]
        [--max-backlog N]   service.max_backlog of the project (default: the project default, 10,000)
        [--profile]         py-spy the serve process for 10 s while it takes the file
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import free_port, start_syncline
from _profile import record, summary

FLOW = """\
kind: Flow
name: p10
trigger:
  file: {{connection: drop, pattern: "*.csv", per: record, batch: {batch}, stable_for: 0s, every: 200ms}}
steps:
  - set: {{amount: "{{{{ input.record.amount }}}}"}}
"""
CONNECTION = """\
kind: Connection
name: drop
type: file
system: bank
config: {base_dir: drop}
"""
ROW = "{n},ACME-{n:08d},2026-12-01,{n}.25,EUR,Invoice payment reference {n:010d}\n"
MIB = 1024 * 1024


def write_csv(path: Path, lines: int) -> int:
    temporary = path.with_name(path.name + ".part")
    with temporary.open("w") as out:
        out.write("id,account,date,amount,currency,text\n")
        for start in range(1, lines + 1, 10_000):
            out.writelines(ROW.format(n=n) for n in range(start, min(start + 10_000, lines + 1)))
    return temporary.stat().st_size


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def counts(db: Path) -> tuple[int, int]:
    """(runs of p10, finished ones) in the store."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        total, done = conn.execute(
            "SELECT count(*), sum(CASE WHEN finished_at IS NOT NULL THEN 1 ELSE 0 END) FROM syncline_runs "
            "WHERE flow = 'p10'"
        ).fetchone()
    return int(total or 0), int(done or 0)


def serve_round(
    root: Path, lines: int, batch: int, concurrency: int, max_backlog: int | None, profile: bool
) -> dict[str, Any]:
    (root / "systems").mkdir(parents=True)
    (root / "flows").mkdir()
    (root / "drop").mkdir()
    service = f"service: {{max_backlog: {max_backlog}}}\n" if max_backlog else ""
    (root / "syncline.yaml").write_text("kind: Project\nname: p10\n" + service)
    (root / "systems" / "drop.yaml").write_text(CONNECTION)
    (root / "flows" / "p10.yaml").write_text(FLOW.format(batch=batch))
    size = write_csv(root / "big.csv", lines)
    db = root / ".syncline" / "syncline.db"
    proc = start_syncline(root, free_port(), extra=("--concurrency", str(concurrency), "--log-level", "warning"))
    try:
        (root / "big.csv.part").rename(root / "drop" / "big.csv")
        started = time.perf_counter()
        spy = record(proc.pid, 10, root / "p10.raw") if profile else None
        taken = finished = None
        rss = 0
        while finished is None:
            time.sleep(0.5)
            if not proc.alive():
                raise RuntimeError(f"serve exited:\n{proc.tail()}")
            rss = max(rss, peak_rss(proc.pid))
            if taken is None and (root / "drop" / "done" / "big.csv").exists():
                taken = time.perf_counter() - started
            total, done = counts(db) if db.exists() else (0, 0)
            if taken is not None and done >= lines:
                finished = time.perf_counter() - started
        rss = max(rss, peak_rss(proc.pid))
        assert total == lines, f"{total} runs for {lines} records"
    finally:
        proc.stop()
    profiled: list[str] = []
    if spy is not None:
        spy.wait(60)
        profiled = summary(root / "p10.raw") if (root / "p10.raw").exists() else ["  (py-spy recorded nothing)"]
    return {
        "size": size,
        "intake": lines / taken,
        "drain": lines / finished,
        "seconds": finished,
        "rss": rss,
        "profile": profiled,
    }


class _Counting:
    """A SourceContext that keeps nothing: counts records, checks their order."""

    def __init__(self, connector: Any) -> None:
        import logging

        from runtime.clock import SystemClock

        self.flow, self.trigger_id = "p10", "file:p10"
        self.clock = SystemClock()
        self.log = logging.getLogger("p10")
        self.taken = 0
        self._connector = connector
        self._cursor: Any = None

    async def accept(self, events: Sequence[Any], *, cursor: Any = None) -> list[Any]:
        from runtime.source_api import Accepted

        for event in events:
            self.taken += 1
            assert event.payload["number"] == self.taken
        self._cursor = cursor
        return [Accepted(event, event.key, True) for event in events]

    async def dead_letter(self, event: Any, reason: str, message: str) -> None:
        raise AssertionError(message)

    async def cursor(self) -> Any:
        return self._cursor

    async def ready(self) -> None:
        return None

    def paused(self) -> bool:
        return False

    def progressed(self) -> None:
        return None

    async def connector(self) -> Any:
        return self._connector

    def redact(self, text: str) -> str:
        return text

    def count(self, name: str, value: float = 1.0) -> None:
        return None


def source_round(root: Path, lines: int, batch: int) -> dict[str, float]:
    from connectors.files import FileConfig, create
    from runtime.connector_api import ConnectorContext
    from runtime.triggers.file import FileSpec
    from runtime.triggers.file_source import FileSource

    folder = root / "source"
    folder.mkdir()
    write_csv(folder / "big.csv", lines)
    (folder / "big.csv.part").rename(folder / "big.csv")
    connector = create(FileConfig(base_dir=str(folder)), {}, ConnectorContext(connection="drop"))
    spec = FileSpec.model_validate({"connection": "drop", "per": "record", "batch": batch, "stable_for": "0s"})
    ctx = _Counting(connector)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    asyncio.run(FileSource(spec).scan(ctx, connector.folder()))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert ctx.taken == lines
    return {"rate": lines / seconds, "growth": max(after - before, 0)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-backlog", type=int, default=None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a 5,000-line file, to check the script runs")
    args = parser.parse_args(argv)
    lines = 5_000 if args.smoke else args.lines
    with tempfile.TemporaryDirectory(prefix="p10-") as temp:
        root = Path(temp)
        alone = source_round(root, lines, args.batch)
        served = serve_round(root / "project", lines, args.batch, args.concurrency, args.max_backlog, args.profile)
    print(f"P10 CSV drop: {lines:,} lines ({served['size'] / MIB:,.1f} MiB), per record, batch {args.batch}")
    print(
        f"  source alone (parse + batch, no store): {alone['rate']:,.0f} records/s, RSS growth {alone['growth'] / MIB:,.1f} MiB"
    )
    backlog = f"{args.max_backlog:,}" if args.max_backlog else "10,000 (default)"
    print(f"  syncline serve, SQLite, --concurrency {args.concurrency}, service.max_backlog {backlog}:")
    print(f"    intake (rename -> file in done/, every record a committed run): {served['intake']:,.0f} records/s")
    print(f"    drain (every run finished): {served['drain']:,.0f} runs/s ({served['seconds']:,.0f} s)")
    bar = "met" if served["rss"] < 200 * MIB else "NOT met"
    print(f"    peak RSS of the serve process: {served['rss'] / MIB:,.0f} MiB (bar < 200 MiB: {bar})")
    if served["profile"]:
        print("  profile of the serve process while it takes the file (py-spy, 10 s):")
        print("\n".join(served["profile"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
