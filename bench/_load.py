"""Load generators for the service benchmarks.

- `wrk_load`: wrk (1 thread, N connections, keep-alive) with a Lua script that gives every request
  a unique order id; latency percentiles from wrk's histogram. Used when `wrk` is installed.
- `py_load`: a small asyncio HTTP/1.1 client on raw protocols (no dependencies): N keep-alive
  connections, closed loop (as fast as the server answers) or open loop at a fixed rate, where a
  request's latency counts from the moment it was due (no coordinated omission). Records every
  request's latency for p50/p99. Requests come from a function of the request number, so each can
  carry its own id and signature.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _harness import ORDER_HEAD, ORDER_TAIL, percentile


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    tool: str = "py"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    """wrk is used when installed, unless BENCH_LOAD=py asks for the asyncio client."""
    return shutil.which("wrk") is not None and os.environ.get("BENCH_LOAD", "auto") != "py"


# -------------------------------------------------------------------------------------------- wrk

_LUA = """
local n = 0
local head = '%(head)s'
local tail = '%(tail)s'
local hdrs = {["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  return wrk.format("POST", "%(path)s", hdrs, head .. "%(tag)s" .. n .. tail)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"p50\\":%%d,\\"p99\\":%%d,\\"max\\":%%d,"
    .. "\\"errors\\":%%d}\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_load(port: int, path: str, seconds: float, connections: int = 32, tag: str = "w") -> LoadResult:
    """POST unique P1 orders for `seconds` with wrk (1 thread, `connections` connections)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % {"head": ORDER_HEAD, "tail": ORDER_TAIL, "path": path, "tag": tag})
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    data = json.loads(line[8:])
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        errors=data["errors"],
        tool="wrk",
    )


# ----------------------------------------------------------------------------------- asyncio client


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `send` returns the response status."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buffer[:head_end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
        elif b"transfer-encoding: chunked" in head:
            end = self.buffer.find(b"\r\n0\r\n\r\n", head_end)
            if end < 0:
                return
            total = end + 7
        else:
            total = head_end + 4
        status = int(self.buffer[9:12])
        del self.buffer[:total]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def _connect(port: int) -> _Conn:
    _transport, protocol = await asyncio.get_running_loop().create_connection(_Conn, "127.0.0.1", port)
    return protocol


def raw_request(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _py_load(
    port: int,
    make: Callable[[int], bytes],
    seconds: float,
    connections: int,
    rate: float | None,
    warmup: float,
) -> LoadResult:
    loop = asyncio.get_running_loop()
    started = loop.time()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    counter = iter(range(1 << 62))
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()

    async def one(conn: _Conn, number: int, due: float) -> _Conn:
        nonlocal errors
        try:
            if conn.closed:
                conn = await _connect(port)
            status = await conn.send(make(number))
        except OSError:
            errors += 1
            await asyncio.sleep(0.01)
            return await _connect(port)
        done = loop.time()
        if due >= measure_from and done <= stop_at:
            latencies.append(done - due)
            statuses[status] += 1
        return conn

    async def closed_loop() -> None:
        conn = await _connect(port)
        while loop.time() < stop_at:
            conn = await one(conn, next(counter), loop.time())
        if conn.transport is not None:
            conn.transport.close()

    async def open_loop() -> None:
        conn = await _connect(port)
        while True:
            number, due = await queue.get()
            if number < 0:
                break
            conn = await one(conn, number, due)
        if conn.transport is not None:
            conn.transport.close()

    async def scheduler() -> None:
        assert rate is not None
        sent = 0
        while True:
            now = loop.time()
            if now >= stop_at:
                break
            due_count = int((now - started) * rate)
            while sent < due_count:
                queue.put_nowait((next(counter), started + sent / rate))
                sent += 1
            await asyncio.sleep(0.001)
        # drop what was not sent yet: it was due after the end, or the server is too slow
        while not queue.empty():
            queue.get_nowait()
        for _ in range(connections):
            queue.put_nowait((-1, 0.0))

    if rate is None:
        await asyncio.gather(*(closed_loop() for _ in range(connections)))
    else:
        await asyncio.gather(scheduler(), *(open_loop() for _ in range(connections)))
    latencies.sort()
    ok = sum(n for s, n in statuses.items() if s < 400)
    bad = sum(statuses.values()) - ok
    return LoadResult(
        requests=ok,
        seconds=seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
        errors=errors + bad,
        statuses=statuses,
    )


def py_load(
    port: int,
    make: Callable[[int], bytes],
    seconds: float,
    *,
    connections: int = 32,
    rate: float | None = None,
    warmup: float = 0.0,
) -> LoadResult:
    """Send `make(i)` requests on `connections` connections for `warmup + seconds`; figures cover the
    last `seconds`. `rate`: requests per second (open loop) instead of as fast as possible."""
    return asyncio.run(_py_load(port, make, seconds, connections, rate, warmup))


def p1_load(port: int, path: str, seconds: float, *, warmup: float, connections: int = 32) -> LoadResult:
    """P1 load: wrk when installed (warm-up run discarded), else the asyncio client."""
    if have_wrk():
        if warmup:
            wrk_load(port, path, warmup, connections, tag=f"w{time.monotonic_ns()}-")
        return wrk_load(port, path, seconds, connections, tag=f"m{time.monotonic_ns()}-")
    tag = f"p{time.monotonic_ns()}-"
    return py_load(
        port,
        lambda i: raw_request(path, (ORDER_HEAD + tag + str(i) + ORDER_TAIL).encode()),
        seconds,
        connections=connections,
        warmup=warmup,
    )
