"""Where a server process spends its time: py-spy samples (raw/collapsed stacks) summarised as the
top self-time functions and a breakdown by area.

    python bench/_profile.py FILE.raw [--top 15]

`record(pid, seconds, out)` starts `py-spy record --nonblocking --gil` on a process (py-spy is
installed into the venv with pip when missing); `--gil` keeps the samples of the thread holding
the GIL, i.e. the Python work that competes for the one core a process can use.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _harness import BINDIR, ensure_modules

# (area, pattern on "function (file:line)"), first match wins, tried from the innermost frame out.
AREAS: list[tuple[str, re.Pattern[str]]] = [
    ("logging", re.compile(r"logging/|service/logs\.py")),
    ("JSON encode/decode", re.compile(r"simplejson/|json/|jsonvalues\.py")),
    ("metrics", re.compile(r"prometheus_client/")),
    ("JSON Schema (validate step)", re.compile(r"jsonschema|referencing/|rpds|steps/validate\.py|mappings\.py")),
    ("expression rendering / mapping", re.compile(r"jinja2/|runtime/expr/|steps/map\.py|markupsafe")),
    ("store / journal writes", re.compile(r"runtime/store/|sqlalchemy/|sqlite3|concurrent/futures|threading\.py")),
    (
        "connector call (http client)",
        re.compile(r"connectors/http/|httpx|httpcore/|anyio/|sniffio|aiohttp/|_transports\.py"),
    ),
    (
        "intake checks (webhook_intake.py, http_intake.py, auth)",
        re.compile(r"service/http_intake\.py|triggers/webhook_intake\.py|webhook_auth\.py|hmac\.py|hashlib"),
    ),
    ("HTTP server (uvicorn/h11/starlette)", re.compile(r"uvicorn/|starlette/|h11/")),
    (
        "engine (executor, steps, service)",
        re.compile(r"runtime/engine/|runtime/steps/|service/|executor\.py|Executor\.|Handler\."),
    ),
    (
        "asyncio event loop (scheduling, socket I/O)",
        re.compile(r"asyncio/|selectors\.py|socket\.py|serve\.py|cli\.py|<module>"),
    ),
]
# Library frames that say little about who asked: attribute them to the caller's area.
GENERIC = re.compile(
    r"asyncio/|selectors\.py|socket\.py|typing\.py|enum\.py|functools\.py|contextlib\.py|abc\.py|re/|<frozen"
)


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def area_of(frames: list[str]) -> str:
    """The area of the innermost frame that is not a generic library frame (else the innermost)."""
    for frame in reversed(frames):
        if GENERIC.search(frame):
            continue
        for name, pattern in AREAS:
            if pattern.search(frame):
                # h11 under httpcore is the client's parser; under uvicorn it is the server's
                if name.startswith("HTTP server") and "h11/" in frame and any("httpcore/" in f for f in frames):
                    return "connector call (http client)"
                return name
        return "other: " + frame.split(" (")[-1].split(":")[0].rsplit("/", 2)[-1]
    leaf = frames[-1] if frames else "?"
    for name, pattern in AREAS:
        if pattern.search(leaf):
            return name
    return "other"


def load(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def is_idle(frames: list[str]) -> bool:
    leaf = frames[-1] if frames else ""
    return "EpollSelector.select" in leaf or "SimpleQueue.get" in leaf or leaf.startswith("_worker (concurrent")


def summary(path: Path, top: int = 15) -> list[str]:
    """Top self-time functions and areas of the main (event loop) thread, as shares of its busy
    samples (running Python or waiting for the GIL inside Python code; idle = waiting in epoll);
    then the store's threads (SQLite writer and readers) on their own, whose samples include time
    in sqlite3 with the GIL released (statement execution, COMMIT's fsync)."""
    stacks = load(path)
    self_time: Counter[str] = Counter()
    thread_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    idle = 0
    for stack, count in stacks.items():
        frames = _frames(stack)
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        if frames[0].startswith("Thread._bootstrap"):
            if not is_idle(frames):
                thread_time[leaf] += count
            continue
        if is_idle(frames):
            idle += count
            continue
        self_time[leaf] += count
        areas[area_of(frames)] += count
    busy = sum(areas.values()) or 1
    threads = sum(thread_time.values()) or 1
    out = [
        f"  main thread: {busy} busy of {busy + idle} samples ({100 * busy / (busy + idle or 1):.0f}% busy);"
        f" top {top} self-time functions (% of busy samples):"
    ]
    out += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    out.append("  main thread by area:")
    out += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in areas.most_common() if 100 * n / busy >= 0.5]
    out.append(
        f"  store threads: {threads} non-idle samples ({100 * threads / (busy + idle or 1):.0f}% of the main thread's), top 5:"
    )
    out += [f"    {100 * n / threads:5.1f}%  {name}" for name, n in thread_time.most_common(5)]
    out.append(f"  main thread, Syncline's own functions by inclusive time (top {top}):")
    out += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in inclusive(stacks, top)]
    return out


def inclusive(stacks: Counter[str], top: int) -> list[tuple[str, int]]:
    """Syncline's functions (runtime/, connectors/) on the busy main thread by inclusive samples:
    what each costs with everything it calls (a function counted once per stack)."""
    total: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = _frames(stack)
        if frames[0].startswith("Thread._bootstrap") or is_idle(frames):
            continue
        seen = {re.sub(r":\d+\)$", ")", f) for f in frames if "runtime/" in f or "connectors/" in f}
        for name in seen:
            total[name] += count
    return total.most_common(top)


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[str] | None:
    """Start py-spy on `pid` for `seconds` (raw output to `out`); None when py-spy is unavailable."""
    spy = BINDIR / "py-spy"
    if not spy.exists():
        ensure_modules({"py_spy": "py-spy"}, install=True)  # a binary: there is no module to import
    if not spy.exists():
        return None
    cmd = [str(spy), "record", "--pid", str(pid), "--nonblocking", "--format", "raw"]
    cmd += ["--rate", "200", "--duration", str(max(1, round(seconds))), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print("\n".join(summary(args.raw, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
