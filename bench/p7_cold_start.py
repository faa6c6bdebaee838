"""P7: `syncline serve` cold start to ready (GET /readyz → 200) with 200 generated flows.

Each start is a new process (seconds from spawn to the first 200 from /readyz, polled every 10 ms).
Starts alternate between a new store (first start: the SQLite file is created and migrated) and an
existing one (a restart). Prints the median of each over --rounds starts (bar: <= 2 s), then where a
start spends its time, measured in one separate process: imports, checking the project
(`check_project`) and compiling it (`build_plan`) — `serve` checks the project once before starting
and `Service.start` loads it again.

    python bench/p7_cold_start.py [--flows 200] [--rounds 5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PYTHON, free_port, median, rounds_text, start_syncline, write_project

BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter()
import runtime.cli  # everything `syncline` imports before serving
import runtime.commands.serve, runtime.service.app, uvicorn
t1 = time.perf_counter()
from pathlib import Path
from runtime.compiler import check_project
from runtime.engine.plan import build_plan
root = Path(sys.argv[1])
checked = check_project(root)
t2 = time.perf_counter()
plan = build_plan(checked)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "check": t2 - t1, "plan": t3 - t2, "flows": len(plan.flows)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6, help="starts, alternating new/existing store (>= 3 each)")
    parser.add_argument("--smoke", action="store_true", help="2 starts")
    args = parser.parse_args(argv)
    rounds = 2 if args.smoke else max(args.rounds, 6)
    first: list[float] = []
    restart: list[float] = []
    with tempfile.TemporaryDirectory(prefix="syncline-p7-") as tmp:
        root = Path(tmp)
        write_project(root, 9, flows=args.flows)  # the sink is never called: port 9 (discard)
        for index in range(rounds):
            fresh = index % 2 == 0
            if fresh:
                shutil.rmtree(root / ".syncline", ignore_errors=True)
            proc = start_syncline(root, free_port())
            try:
                seconds = proc.ready_after
            finally:
                proc.stop()
            (first if fresh else restart).append(seconds)
        done = subprocess.run([PYTHON, "-c", BREAKDOWN, str(root)], capture_output=True, text=True, timeout=120)
    print(
        f"P7 syncline serve cold start to /readyz 200, {args.flows} flows (+ {args.flows} mappings), new process each"
    )
    print(f"  first start (new store)  median {median(first):5.2f} s  (starts: {rounds_text(first, '{:.2f}')})")
    print(f"  restart (existing store) median {median(restart):5.2f} s  (starts: {rounds_text(restart, '{:.2f}')})")
    worst = max(median(first), median(restart))
    print(f"  bar <= 2 s: {'PASS' if worst <= 2 else 'FAIL'}")
    if done.returncode == 0:
        parts = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  where it goes (one process): imports {parts['import']:.2f} s, check_project {parts['check']:.2f} s,"
            f" build_plan {parts['plan']:.2f} s (serve checks the project once and hands the result to the service)"
        )
    else:
        print(f"  breakdown failed: {done.stderr[-500:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
