"""P1: webhook (sync mode) → validate → map (order → ERP sales order, 5 lines, exact decimal totals)
→ HTTP call to a loopback sink → reply with the ERP id; journal on (SQLite store in the project).

Contenders, each doing the same work against the same sink (bench/_sink.py), run in turn
(A B A B ...) for --rounds rounds, each freshly started, warmed up, then loaded for --duration
seconds by 32 keep-alive connections (wrk, 1 thread, when installed; else bench/_load.py):

  syncline          `syncline serve` on a generated project in a temp dir (as shipped)
  aiohttp           hand-written aiohttp server + aiohttp client (bench/_p1_apps.py)
  starlette+httpx   hand-written Starlette on uvicorn + httpx.AsyncClient (default transport)
  node-red          Node-RED 5 with the same flow (bench/_nodered.py), on Node 22 from npm

Before loading, each contender gets one order and the sink checks that what it received is the P1
mapping (total 528.02 needs exact decimals). Prints the median req/s, p50/p99 latency (median over
rounds), the server's CPU use, and the ratios against the bars (>= 0.5x aiohttp, >= 1.5x Node-RED,
p99 <= Node-RED's). Missing aiohttp/httpx-aiohttp are pip-installed into the venv and Node-RED is
npm-installed into bench/.cache/nodered — except in --smoke (1 short round, CI), which skips what
is missing and always skips Node-RED.

    python bench/p1_webhook_sync.py [--rounds 3] [--duration 8] [--smoke] [--profile]
        [--variant PATCHES]   also run `syncline serve` with proposed optimisations applied in-process
                              (bench/_patched_serve.py: sniffio, aiohttp, uvloop), e.g. sniffio,aiohttp
        [--strict]            exit 1 when a bar is missed (full runs only)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BENCH,
    PYTHON,
    Proc,
    check_mapped,
    ensure_modules,
    free_port,
    median,
    order_body,
    request,
    rounds_text,
    sink,
    sink_last,
    start_syncline,
    thread_cpu,
    wait_until,
    write_project,
)
from _load import LoadResult, have_wrk, p1_load

PATH = "/hooks/p1"
JSON = {"Content-Type": "application/json"}


@dataclass
class Contender:
    name: str
    start: Callable[[int, int, Path], Proc]  # (port, sink port, scratch dir) -> running process
    results: list[LoadResult] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return median([r.rps for r in self.results])

    @property
    def p50(self) -> float:
        return median([r.p50_ms for r in self.results])

    @property
    def p99(self) -> float:
        return median([r.p99_ms for r in self.results])


def start_app(kind: str, *extra: str) -> Callable[[int, int, Path], Proc]:
    def start(port: int, sink_port: int, scratch: Path) -> Proc:
        return Proc(kind, [PYTHON, str(BENCH / "_p1_apps.py"), kind, str(port), str(sink_port), *extra])

    return start


def start_syncline_in(patches: str | None) -> Callable[[int, int, Path], Proc]:
    def start(port: int, sink_port: int, scratch: Path) -> Proc:
        root = scratch / f"project-{port}"
        write_project(root, sink_port)
        return start_syncline(root, port, patches=patches)

    return start


def start_nodered(port: int, sink_port: int, scratch: Path) -> Proc:
    import _nodered

    return _nodered.start(scratch / f"nodered-{port}", port, sink_port)


def measure(
    contender: Contender, sink_port: int, scratch: Path, duration: float, warmup: float, profile: Path | None
) -> None:
    port = free_port()
    proc = contender.start(port, sink_port, scratch)
    try:
        wait_until(proc, lambda: request(port, "POST", PATH, order_body("ready"), JSON)[0] == 201, 90)
        status, body = request(port, "POST", PATH, order_body("check"), JSON)
        problem = check_mapped(sink_last(sink_port), "check")
        if status != 201 or b"SO-1" not in body or problem:
            raise RuntimeError(f"{contender.name} does not do the P1 work: {status} {body[:200]!r} {problem or ''}")
        spy = None
        if profile is not None:
            import _profile

            p1_load(port, PATH, warmup, warmup=0)
            spy = _profile.record(proc.pid, duration, profile)
            warmup = 0
        before, started = thread_cpu(proc.pid), time.perf_counter()
        result = p1_load(port, PATH, duration, warmup=warmup)
        after, elapsed = thread_cpu(proc.pid), time.perf_counter() - started
        if spy is not None:
            spy.communicate(timeout=60)
        if result.errors:
            print(f"  ! {contender.name}: {result.errors} errors", flush=True)
        contender.results.append(result)
        contender.cpu.append(((after[0] - before[0]) / elapsed, (after[1] - before[1]) / elapsed))
    finally:
        proc.stop()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measurement")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 s; no installs; no Node-RED")
    parser.add_argument("--no-nodered", action="store_true")
    parser.add_argument("--variant", action="append", default=[], help="patched syncline (see _patched_serve.py)")
    parser.add_argument("--profile", action="store_true", help="py-spy on Syncline in an extra measurement")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a bar is missed")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.warmup = 1, 2.0, 0.5

    contenders = [Contender("syncline", start_syncline_in(None))]
    contenders += [Contender(f"syncline+{v}", start_syncline_in(v)) for v in args.variant]
    skipped: list[str] = []
    missing = ensure_modules({"aiohttp": "aiohttp"}, install=not args.smoke)
    if missing:
        skipped.append("aiohttp baseline (aiohttp not installed; a full run installs it)")
    else:
        contenders.append(Contender("aiohttp", start_app("aiohttp")))
    contenders.append(Contender("starlette+httpx", start_app("starlette")))
    if args.smoke or args.no_nodered:
        skipped.append("node-red (smoke mode)" if args.smoke else "node-red (--no-nodered)")
    else:
        import _nodered

        why = _nodered.install()
        if why is None:
            contenders.append(Contender("node-red", start_nodered))
        else:
            skipped.append(f"node-red ({why})")
    profile_raw: Path | None = None

    tool = "wrk -t1 -c32" if have_wrk() else "bench/_load.py (asyncio), 32 connections"
    print("P1 webhook (sync) → validate → map → HTTP call → respond, journal on (SQLite)")
    print(f"  load: {tool}, {args.duration:g} s per measurement after {args.warmup:g} s warm-up,")
    print(f"  {args.rounds} round(s), contenders in turn: {', '.join(c.name for c in contenders)}", flush=True)
    for why in skipped:
        print(f"  skipped: {why}")
    with sink() as sink_port, tempfile.TemporaryDirectory(prefix="syncline-p1-") as tmp:
        scratch = Path(tmp)
        for _ in range(args.rounds):
            for contender in contenders:
                measure(contender, sink_port, scratch, args.duration, args.warmup, None)
        if args.profile:
            profile_raw = scratch / "syncline.raw"
            extra = Contender("syncline (profiled)", start_syncline_in(None))
            measure(extra, sink_port, scratch, args.duration, args.warmup, profile_raw)
            import _profile

            profile_lines = _profile.summary(profile_raw, 15) if profile_raw.exists() else ["  (py-spy unavailable)"]

    print(f"  {'contender':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'CPU main+threads':>16}  rounds req/s")
    for c in contenders:
        cpu = f"{100 * median([m for m, _ in c.cpu]):.0f}%+{100 * median([t for _, t in c.cpu]):.0f}%"
        print(
            f"  {c.name:<24} {c.rps:8,.0f} {c.p50:8.1f} {c.p99:8.1f}  {cpu:>16}  {rounds_text([r.rps for r in c.results])}"
        )
    by_name = {c.name: c for c in contenders}
    ours = by_name["syncline"]
    ok = True
    if "aiohttp" in by_name:
        r = ours.rps / by_name["aiohttp"].rps
        ok &= r >= 0.5
        print(f"  syncline / aiohttp        {r:5.2f}x  (bar >= 0.5x)  {verdict(r >= 0.5)}")
    if "starlette+httpx" in by_name:
        print(f"  syncline / starlette+httpx {ours.rps / by_name['starlette+httpx'].rps:4.2f}x")
    if "node-red" in by_name:
        nr = by_name["node-red"]
        r = ours.rps / nr.rps
        ok &= r >= 1.5 and ours.p99 <= nr.p99
        print(f"  syncline / node-red       {r:5.2f}x  (bar >= 1.5x)  {verdict(r >= 1.5)}")
        print(
            f"  p99 syncline vs node-red  {ours.p99:.1f} ms vs {nr.p99:.1f} ms  (bar <=)  {verdict(ours.p99 <= nr.p99)}"
        )
    for name in args.variant:
        v = by_name[f"syncline+{name}"]
        print(f"  syncline+{name} / syncline  {v.rps / ours.rps:5.2f}x  (p99 {v.p99:.1f} ms)")
    if args.profile:
        print("  profile of `syncline serve` under this load (py-spy):")
        print("\n".join(profile_lines))
    return 1 if args.strict and not args.smoke and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
