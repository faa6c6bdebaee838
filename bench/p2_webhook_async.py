"""P2: webhook in async mode — verify the HMAC signature (timestamped), dedupe by idempotency key,
commit the run, reply 202; the node's workers (serve's default number of runs in flight) drain
the runs (validate → map → HTTP call) to the loopback sink.

Each round runs, each on a fresh `syncline serve` (SQLite store in the project, journal on):
  A  P2 at max load: 32 keep-alive connections as fast as acks come, every request a new order
     with its own signature → accepted events/s (202s), ack p50/p99, and drained runs/s while
     loaded and in the 5 s after the load stops (succeeded runs from /metrics);
  B  P1's Syncline figure (the sync flow of p1_webhook_sync.py) with the same load generator.
Then, on fresh servers, P2 at a fixed rate of half the median max (open loop: latency counts from
when a request was due) → ack p50/p99. Load comes from bench/_load.py (asyncio client; its own CPU
use is printed, so a saturated generator shows). Bars: accepted/s >= 1.5x P1's Syncline figure;
ack p99 <= 25 ms at half of max load.

    python bench/p2_webhook_async.py [--rounds 3] [--duration 8] [--smoke] [--profile]
        [--workers N] [--patch PATCHES]   (proposed optimisations, see bench/_patched_serve.py)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    HOOK_SECRET,
    free_port,
    median,
    order_body,
    request,
    rounds_text,
    sink,
    start_syncline,
    thread_cpu,
    write_project,
)
from _load import LoadResult, py_load, raw_request

P2_PATH = "/hooks/p2"
P1_PATH = "/hooks/p1"
_RUNS = re.compile(r"^syncline_runs_total\{([^}]*)\}\s+([0-9.e+]+)", re.M)
_DEPTH = re.compile(r"^syncline_queue_depth\s+([0-9.e+]+)", re.M)


def signed(tag: str) -> Callable[[int], bytes]:
    secret = HOOK_SECRET.encode()

    def make(i: int) -> bytes:
        body = order_body(f"{tag}{i}")
        stamp = str(int(time.time()))
        signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return raw_request(P2_PATH, body, {"X-Timestamp": stamp, "X-Signature": signature})

    return make


def plain(tag: str) -> Callable[[int], bytes]:
    return lambda i: raw_request(P1_PATH, order_body(f"{tag}{i}"))


def metrics(port: int) -> tuple[float, float]:
    """(runs of flow p2 that succeeded, queue depth), from /metrics."""
    text = request(port, "GET", "/metrics")[1].decode()
    total = 0.0
    for labels, value in _RUNS.findall(text):
        if 'flow="p2"' in labels and 'status="succeeded"' in labels:
            total += float(value)
    depth = _DEPTH.search(text)
    return total, float(depth.group(1)) if depth else float("nan")


def succeeded(port: int) -> float:
    return metrics(port)[0]


def check_p2(port: int) -> None:
    make = signed("check-")
    raw = make(0)
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    status, answer = request(port, "POST", P2_PATH, body, headers)
    if status != 202:
        raise RuntimeError(f"P2 webhook answered {status}: {answer[:300]!r}")
    again, answer2 = request(port, "POST", P2_PATH, body, headers)
    if again not in (200, 202) or answer2.split(b'"run_id":"')[1][:20] != answer.split(b'"run_id":"')[1][:20]:
        raise RuntimeError(f"a repeated delivery did not get the first run: {again} {answer2[:300]!r}")
    bad = dict(headers, **{"X-Signature": "0" * 64})
    if request(port, "POST", P2_PATH, body, bad)[0] != 401:
        raise RuntimeError("a bad signature was not refused")


class Server:
    patches: str | None = None

    def __init__(self, scratch: Path, sink_port: int, mode: str, workers: int | None) -> None:
        self.root = scratch / f"{mode}-{time.monotonic_ns()}"
        write_project(self.root, sink_port, mode=mode)
        self.port = free_port()
        self.proc = start_syncline(
            self.root, self.port, extra=["--workers", str(workers)] if workers else [], patches=Server.patches
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()


def loaded(
    port: int, pid: int, make: Callable[[int], bytes], seconds: float, rate: float | None = None
) -> tuple[LoadResult, float, float, float]:
    """(result, server CPU %, load generator CPU %, seconds)"""
    cpu0, own0, t0 = thread_cpu(pid), time.process_time(), time.perf_counter()
    result = py_load(port, make, seconds, rate=rate)
    elapsed = time.perf_counter() - t0
    cpu1 = thread_cpu(pid)
    server = 100 * ((cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1])) / elapsed
    return result, server, 100 * (time.process_time() - own0) / elapsed, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--drain", type=float, default=5.0, help="seconds of drain watched after the load")
    parser.add_argument("--workers", type=int, help="syncline serve --workers (runs in flight; default: serve's)")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 s")
    parser.add_argument("--profile", action="store_true", help="py-spy on Syncline during one extra max-load run")
    parser.add_argument("--patch", help="run every server with these proposals applied (see _patched_serve.py)")
    args = parser.parse_args(argv)
    Server.patches = args.patch
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.drain = 1, 2.0, 0.5, 1.0

    accepted: list[LoadResult] = []
    during: list[float] = []
    after: list[float] = []
    backlog: list[float] = []
    p1: list[LoadResult] = []
    half: list[LoadResult] = []
    cpus: dict[str, list[tuple[float, float]]] = {"p2 max": [], "p1": [], "p2 half": []}
    profile_lines: list[str] = []
    with sink() as sink_port, tempfile.TemporaryDirectory(prefix="syncline-p2-") as tmp:
        scratch = Path(tmp)
        for round_ in range(args.rounds):
            with Server(scratch, sink_port, "async", args.workers) as server:
                check_p2(server.port)
                py_load(server.port, signed(f"w{round_}-"), args.warmup)
                s0, t0 = succeeded(server.port), time.perf_counter()
                result, cpu, own, _ = loaded(server.port, server.proc.pid, signed(f"m{round_}-"), args.duration)
                s1, t1 = succeeded(server.port), time.perf_counter()
                statuses = dict(result.statuses)
                if set(statuses) - {202}:
                    print(f"  ! P2 statuses {statuses}", flush=True)
                accepted.append(result)
                during.append((s1 - s0) / (t1 - t0))
                cpus["p2 max"].append((cpu, own))
                last, t_last = s1, t1
                deadline = t1 + args.drain
                while time.perf_counter() < deadline:
                    time.sleep(0.25)
                    now_count = succeeded(server.port)
                    if now_count > last:
                        last, t_last = now_count, time.perf_counter()
                after.append((last - s1) / (t_last - t1) if t_last > t1 else 0.0)
                backlog.append(metrics(server.port)[1])
            with Server(scratch, sink_port, "sync", args.workers) as server:
                py_load(server.port, plain(f"w{round_}-"), args.warmup)
                result, cpu, own, _ = loaded(server.port, server.proc.pid, plain(f"m{round_}-"), args.duration)
                p1.append(result)
                cpus["p1"].append((cpu, own))
        max_rate = median([r.rps for r in accepted])
        rate = max(1.0, max_rate / 2)
        for round_ in range(args.rounds):
            with Server(scratch, sink_port, "async", args.workers) as server:
                py_load(server.port, signed(f"hw{round_}-"), args.warmup, rate=rate)
                result, cpu, own, _ = loaded(server.port, server.proc.pid, signed(f"h{round_}-"), args.duration, rate)
                half.append(result)
                cpus["p2 half"].append((cpu, own))
        if args.profile:
            import _profile

            raw = scratch / "p2.raw"
            with Server(scratch, sink_port, "async", args.workers) as server:
                py_load(server.port, signed("pw-"), args.warmup)
                spy = _profile.record(server.proc.pid, args.duration, raw)
                py_load(server.port, signed("p-"), args.duration)
                if spy is not None:
                    spy.communicate(timeout=60)
            profile_lines = _profile.summary(raw, 15) if raw.exists() else ["  (py-spy unavailable)"]

    def cpu_text(key: str) -> str:
        return f"server CPU {median([c for c, _ in cpus[key]]):.0f}%, load generator {median([o for _, o in cpus[key]]):.0f}%"

    p1_rate = median([r.rps for r in p1])
    half_p99 = median([r.p99_ms for r in half])
    patched = f" [patched: {args.patch}]" if args.patch else ""
    print(
        f"P2 webhook (async): HMAC + idempotency key + commit → 202; {args.workers or 'default'} runs in flight drain to the sink{patched}"
    )
    print(f"  load: bench/_load.py, 32 connections, {args.duration:g} s per measurement, {args.rounds} round(s)")
    print(
        f"  accepted events/s at max load  median {max_rate:8,.0f}  ack p50 {median([r.p50_ms for r in accepted]):.1f} ms"
        f"  p99 {median([r.p99_ms for r in accepted]):.1f} ms  ({cpu_text('p2 max')})  rounds: {rounds_text([r.rps for r in accepted])}"
    )
    print(
        f"  drained runs/s                 during load {median(during):,.0f}, after load {median(after):,.0f}"
        f"  (queue depth after the {args.drain:g} s drain window: {median(backlog):,.0f} runs)"
    )
    print(
        f"  P1 Syncline (sync), same load  median {p1_rate:8,.0f} req/s  p99 {median([r.p99_ms for r in p1]):.1f} ms"
        f"  ({cpu_text('p1')})  rounds: {rounds_text([r.rps for r in p1])}"
    )
    print(
        f"  at half of max ({rate:,.0f}/s)       achieved {median([r.rps for r in half]):,.0f}/s"
        f"  ack p50 {median([r.p50_ms for r in half]):.1f} ms  p99 {half_p99:.1f} ms  ({cpu_text('p2 half')})"
    )
    ratio = max_rate / p1_rate if p1_rate else float("nan")
    print(f"  accepted / P1 Syncline         {ratio:.2f}x  (bar >= 1.5x)  {'PASS' if ratio >= 1.5 else 'FAIL'}")
    print(f"  ack p99 at half load           {half_p99:.1f} ms  (bar <= 25 ms)  {'PASS' if half_p99 <= 25 else 'FAIL'}")
    if profile_lines:
        print("  profile of `syncline serve` at P2 max load (py-spy):")
        print("\n".join(profile_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
