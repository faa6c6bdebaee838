"""P8: the async path — webhook intake (dedupe by idempotency key, commit, 202) and the node's
workers draining the runs (validate → map → HTTP call) to a loopback nginx sink, reported side by
side with the sync mode of the same flow.

Each round, on fresh `syncline serve` processes (SQLite store in the project, journal on):
  A  async at max load: 32 keep-alive connections as fast as 202s come (wrk, 1 thread, when
     installed; else bench/_load.py) for --duration s, then the node drains what is left (up to
     --drain s). From the store's runs (created_at, finished_at): intake/s, runs finished/s
     during the load, and finished/s after it (until the backlog is empty);
  B  the sync mode of the same flow (P1's flow, reply after the call), same load → runs/s;
then, on fresh servers, async at half of the median max intake (open loop, bench/_load.py) →
accept-to-finish latency p50/p99 of the runs accepted then (finished_at - created_at), and the
backlog when the load stops. Node-RED's P1 figure comes from the same run when it is installed
(bench/_nodered.py, npm), else from the figure recorded in docs (said so in the output).

The sink is nginx from Debian's packages (`return 201`, access log off, one worker): a Python sink
takes the CPU the contenders need. Without nginx it falls back to bench/_sink.py and says that the
figures are not comparable.

Bars (QUALITY.md P8): drain rate >= the sync rate and >= 1.5x Node-RED's P1 figure; p99
accept-to-finish < 1 s at half load.

    python bench/p8_async_drain.py [--rounds 3] [--duration 10] [--drain 60] [--smoke] [--profile]
        [--concurrency N]   runs in flight per node (syncline serve --concurrency)
        [--nodered]         measure Node-RED in this run (npm-installs it when missing)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Proc,
    free_port,
    median,
    order_body,
    percentile,
    request,
    rounds_text,
    sink,
    start_syncline,
    thread_cpu,
    wait_until,
    write_project,
)
from _load import LoadResult, have_wrk, p1_load, py_load, raw_request

ASYNC_PATH = "/hooks/p8"
SYNC_PATH = "/hooks/p1"
NODERED_RECORDED = 1958.0  # docs/benchmarks: Node-RED 5.0.7, P1 flow, nginx sink (2026-12-03)
# The P2 flow without its HMAC check (wrk cannot sign): intake dedupes by the order id and commits.
P8_FLOW = """kind: Flow
name: p8
trigger:
  webhook:
    path: /hooks/p8
    mode: async
    idempotency_key: "{{ input.id }}"
steps:
  - validate: schemas/order.json
  - id: order
    map: order_to_erp
  - id: post
    call: erp.create_sales_order
    with: {body: "{{ steps.order.output }}"}
    idempotency_key: "order-{{ input.id }}"
"""
NGINX_CONF = """worker_processes 1;
daemon off;
master_process off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port};
    default_type application/json;
    location / {{ return 201 '{{"id":"SO-1","status":"open"}}'; }}
  }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@contextlib.contextmanager
def nginx_sink() -> Iterator[tuple[int, str]]:
    """nginx on a free port (one worker, access log off): (port, label); bench/_sink.py without it."""
    binary = nginx_binary()
    if binary is None:
        with sink() as port:
            yield port, "bench/_sink.py (nginx missing: `apt-get install nginx-light`; figures not comparable)"
        return
    with tempfile.TemporaryDirectory(prefix="syncline-nginx-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        proc = Proc("nginx", [binary, "-p", tmp, "-c", str(conf)])
        try:
            wait_until(proc, lambda: request(port, "POST", "/sales-orders", b"{}")[0] == 201, 20)
            yield port, "nginx (one worker, access log off)"
        finally:
            proc.stop()


class Server:
    """`syncline serve` on a fresh project: mode async (flow p8 at /hooks/p8) or sync (flow p1)."""

    def __init__(self, scratch: Path, sink_port: int, mode: str, extra: list[str]) -> None:
        self.root = scratch / f"{mode}-{time.monotonic_ns()}"
        write_project(self.root, sink_port, mode="sync" if mode == "sync" else "async")
        if mode != "sync":
            (self.root / "flows" / "p2.yaml").unlink()
            (self.root / "flows" / "p8.yaml").write_text(P8_FLOW)
        self.db = self.root / "state.db"
        self.port = free_port()
        self.proc = start_syncline(self.root, self.port, extra=["--store", f"sqlite:///{self.db}", *extra])

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()

    def runs(self) -> list[tuple[float, float | None, str]]:
        """(created_at, finished_at, status) of every run of flow p8, read from the store's file."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as db:
            rows = db.execute("SELECT created_at, finished_at, status FROM syncline_runs WHERE flow = 'p8'")
            return [(float(c), None if f is None else float(f), str(s)) for c, f, s in rows]

    def backlog(self) -> int:
        return sum(1 for _, finished, _ in self.runs() if finished is None)

    def drain(self, limit: float) -> float:
        """Wait until every accepted run finished (at most `limit` s); seconds waited."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit and self.backlog():
            time.sleep(0.25)
        return time.perf_counter() - t0


def async_load(port: int, seconds: float, *, rate: float | None = None, tag: str) -> LoadResult:
    """Async intake load: wrk at max load when installed, else (and at a fixed rate) bench/_load.py."""
    if rate is None and have_wrk():
        from _load import wrk_load

        return wrk_load(port, ASYNC_PATH, seconds, 32, tag=tag)
    return py_load(port, lambda i: raw_request(ASYNC_PATH, order_body(f"{tag}{i}")), seconds, rate=rate)


def check_async(port: int) -> None:
    status, answer = request(port, "POST", ASYNC_PATH, order_body("check-1"), {"Content-Type": "application/json"})
    if status != 202:
        raise RuntimeError(f"the async webhook answered {status}: {answer[:300]!r}")


@dataclass
class MaxRound:
    intake: float  # accepted runs/s during the load
    during: float  # runs finished/s during the load
    after: float  # runs finished/s after the load, until the backlog was empty
    backlog: int  # runs not finished when the load stopped
    left: int  # runs still not finished after the drain window
    drained_in: float  # seconds after the load until the backlog was empty
    overall: float  # runs finished / (load + drain time)
    cpu: float


def max_round(server: Server, seconds: float, drain: float, warmup: float, tag: str) -> MaxRound:
    async_load(server.port, warmup, tag=f"w{tag}-")
    server.drain(drain)
    cpu0 = sum(thread_cpu(server.proc.pid))
    t0 = time.time()
    async_load(server.port, seconds, tag=f"m{tag}-")
    t1 = time.time()
    cpu = 100 * (sum(thread_cpu(server.proc.pid)) - cpu0) / (t1 - t0)
    server.drain(drain)
    rows = [r for r in server.runs() if r[0] >= t0]
    accepted = [r for r in rows if r[0] <= t1]
    finished = sorted(f for _, f, s in rows if f is not None and s == "succeeded")
    during = sum(1 for f in finished if f <= t1)
    after = [f for f in finished if f > t1]
    backlog = sum(1 for c, f, _ in rows if c <= t1 and (f is None or f > t1))
    drained_in = (after[-1] - t1) if after else 0.0
    return MaxRound(
        intake=len(accepted) / (t1 - t0),
        during=during / (t1 - t0),
        after=len(after) / drained_in if drained_in > 0 else 0.0,
        backlog=backlog,
        left=sum(1 for _, f, _ in rows if f is None),
        drained_in=drained_in,
        overall=len(finished) / ((t1 - t0) + drained_in),
        cpu=cpu,
    )


@dataclass
class HalfRound:
    achieved: float
    p50_ms: float
    p99_ms: float
    backlog: int  # runs accepted but not finished when the load stopped
    left: int


def half_round(server: Server, seconds: float, rate: float, drain: float, warmup: float, tag: str) -> HalfRound:
    async_load(server.port, warmup, rate=rate, tag=f"hw{tag}-")
    server.drain(drain)
    t0 = time.time()
    result = async_load(server.port, seconds, rate=rate, tag=f"h{tag}-")
    t1 = time.time()
    server.drain(drain)
    rows = [r for r in server.runs() if t0 <= r[0] <= t1]
    latencies = sorted(1000 * (f - c) for c, f, _ in rows if f is not None)
    return HalfRound(
        achieved=result.rps,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        backlog=sum(1 for c, f, _ in rows if f is None or f > t1),
        left=sum(1 for _, f, _ in rows if f is None),
    )


def nodered_rate(sink_port: int, scratch: Path, seconds: float, warmup: float) -> float | None:
    import _nodered

    if _nodered.install() is not None:
        return None
    port = free_port()
    proc = _nodered.start(scratch / f"nodered-{port}", port, sink_port)
    try:
        json_body = {"Content-Type": "application/json"}  # else Node-RED hands the flow a string
        wait_until(proc, lambda: request(port, "POST", SYNC_PATH, order_body("x"), json_body)[0] == 201, 90)
        return p1_load(port, SYNC_PATH, seconds, warmup=warmup).rps
    finally:
        proc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--drain", type=float, default=60.0, help="at most this many seconds to drain the backlog")
    parser.add_argument("--concurrency", type=int, help="syncline serve --concurrency (default: serve's)")
    parser.add_argument("--workers", type=int, help="syncline serve --workers (before --concurrency existed)")
    parser.add_argument("--nodered", action="store_true", help="measure Node-RED's P1 figure in this run")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 s")
    parser.add_argument("--profile", action="store_true", help="py-spy on Syncline during one extra max-load run")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.drain, args.nodered = 1, 2.0, 0.5, 30.0, False
    extra: list[str] = []
    if args.concurrency:
        extra += ["--concurrency", str(args.concurrency)]
    if args.workers:
        extra += ["--workers", str(args.workers)]

    maxes: list[MaxRound] = []
    syncs: list[LoadResult] = []
    halves: list[HalfRound] = []
    nodered: float | None = None
    profile_lines: list[str] = []
    with nginx_sink() as (sink_port, sink_label), tempfile.TemporaryDirectory(prefix="syncline-p8-") as tmp:
        scratch = Path(tmp)
        for round_ in range(args.rounds):
            with Server(scratch, sink_port, "async", extra) as server:
                check_async(server.port)
                maxes.append(max_round(server, args.duration, args.drain, args.warmup, f"{round_}"))
            with Server(scratch, sink_port, "sync", extra) as server:
                syncs.append(p1_load(server.port, SYNC_PATH, args.duration, warmup=args.warmup))
        rate = max(1.0, median([m.intake for m in maxes]) / 2)
        for round_ in range(args.rounds):
            with Server(scratch, sink_port, "async", extra) as server:
                halves.append(half_round(server, args.duration, rate, args.drain, args.warmup, f"{round_}"))
        if args.nodered:
            nodered = nodered_rate(sink_port, scratch, args.duration, args.warmup)
        if args.profile:
            import _profile

            raw = scratch / "p8.raw"
            with Server(scratch, sink_port, "async", extra) as server:
                async_load(server.port, args.warmup, tag="pw-")
                spy = _profile.record(server.proc.pid, args.duration, raw)
                async_load(server.port, args.duration, tag="pm-")
                if spy is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        spy.communicate(timeout=60)
            profile_lines = _profile.summary(raw, 25) if raw.exists() else ["  (py-spy unavailable)"]
            if raw.exists() and os.environ.get("BENCH_PROFILE_KEEP"):  # a path to keep the raw stacks
                shutil.copy(raw, os.environ["BENCH_PROFILE_KEEP"])

    sync_rate = median([s.rps for s in syncs])
    drain_during = median([m.during for m in maxes])
    drain_after = median([m.after for m in maxes])
    overall = median([m.overall for m in maxes])
    p99 = median([h.p99_ms for h in halves])
    anchor = nodered if nodered is not None else NODERED_RECORDED
    anchor_label = "measured in this run" if nodered is not None else "recorded P1 figure, not this run"
    setting = " ".join(extra) or "serve's defaults"
    print(f"P8 async drain: webhook → commit → 202, then validate → map → HTTP call; {setting}")
    print(
        f"  sink: {sink_label}; load: {'wrk' if have_wrk() else 'bench/_load.py'}, 32 connections, "
        f"{args.duration:g} s per measurement, {args.rounds} round(s)"
    )
    print(
        f"  intake (202s/s) at max load    median {median([m.intake for m in maxes]):8,.0f}"
        f"  rounds: {rounds_text([m.intake for m in maxes])}  (server CPU {median([m.cpu for m in maxes]):.0f}%)"
    )
    print(
        f"  drain during load (runs/s)     median {drain_during:8,.0f}  rounds: {rounds_text([m.during for m in maxes])}"
    )
    print(
        f"  drain after load (runs/s)      median {drain_after:8,.0f}  rounds: {rounds_text([m.after for m in maxes])}"
        f"  (backlog at stop {median([m.backlog for m in maxes]):,.0f} runs, empty after "
        f"{median([m.drained_in for m in maxes]):.1f} s; not finished: {max(m.left for m in maxes)})"
    )
    print(f"  drain overall (runs/s)         median {overall:8,.0f}  (finished / (load + drain time))")
    print(
        f"  sync mode, same flow (runs/s)  median {sync_rate:8,.0f}  p99 {median([s.p99_ms for s in syncs]):.1f} ms"
        f"  rounds: {rounds_text([s.rps for s in syncs])}"
    )
    print(
        f"  at half of max intake ({rate:,.0f}/s)  achieved {median([h.achieved for h in halves]):,.0f}/s"
        f"  accept-to-finish p50 {median([h.p50_ms for h in halves]):,.1f} ms  p99 {p99:,.1f} ms"
        f"  (backlog at stop {median([h.backlog for h in halves]):,.0f}; not finished: {max(h.left for h in halves)})"
    )
    print(f"  Node-RED P1 (runs/s)           {anchor:8,.0f}  ({anchor_label})")

    def versus(label: str, rate: float, anchor_rate: float, factor: float, name: str) -> tuple[str, str, bool]:
        got = rate / anchor_rate if anchor_rate else float("nan")
        return f"{label:<18} / {name:<8} {got:5.2f}x", f">= {factor:g}x", got >= factor

    bars = [
        versus("drain during load", drain_during, sync_rate, 1.0, "sync"),
        versus("drain after load", drain_after, sync_rate, 1.0, "sync"),
        versus("drain during load", drain_during, anchor, 1.5, "Node-RED"),
        versus("drain after load", drain_after, anchor, 1.5, "Node-RED"),
        (f"p99 accept-to-finish at half load {p99:,.0f} ms", "< 1000 ms", p99 < 1000),
    ]
    for text, bar, ok in bars:
        print(f"  {text}  (bar {bar})  {'PASS' if ok else 'FAIL'}")
    if profile_lines:
        print("  profile of `syncline serve` at max async load (py-spy):")
        print("\n".join(profile_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
