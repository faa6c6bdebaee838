"""A loopback fault proxy in front of the sink (R2): each request passes, or meets the fault it asks for.

It is an asyncio TCP server on its own thread and event loop. It reads one HTTP/1.1 request at a
time (head, then `Content-Length` bytes), records its arrival, and looks at the `fault` field of
the JSON body (the flows under test forward the webhook payload as the body, so a test chooses
the fault per event):

    none / absent   forward to the sink on a fresh connection and relay its answer
    delay:<s>       wait <s> seconds, then forward
    reset           close the connection with a TCP RST after reading the request
    lost-reply      forward to the sink (the effect happens), then reset instead of relaying the answer
    blackhole       accept, read, never answer (until the caller gives up and hangs up)
    5xx             answer 503 itself
    429:<n>         answer 429 with `Retry-After: <n>` (delta seconds)
    429-date:<n>    answer 429 with `Retry-After: <HTTP-date n seconds from now>`

`heal()` makes every later request pass, whatever its body asks for. Nothing but the forwarded
requests reaches the sink, so the sink's counts show exactly what got through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any


@dataclass(frozen=True)
class Arrival:
    event_id: str | None
    key: str | None  # the Idempotency-Key header
    fault: str  # the fault applied ("none" when forwarded)
    at: float  # time.monotonic()


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.healed = False
        self._lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, "127.0.0.1", 0)

    def heal(self) -> None:
        self.healed = True

    def close(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def of_event(self, event_id: str) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.event_id == event_id]

    # ------------------------------------------------------------------------------ serving
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                head, body = request
                event_id, fault = _fault_of(body)
                if self.healed:
                    fault = "none"
                with self._lock:
                    self.arrivals.append(Arrival(event_id, _header(head, b"idempotency-key"), fault, time.monotonic()))
                kind, _, arg = fault.partition(":")
                if kind in ("reset", "lost-reply"):
                    if kind == "lost-reply":
                        await self._forward(head + body)  # the effect lands; its answer never comes back
                    _reset(writer)
                    return
                if kind == "blackhole":
                    while await reader.read(65536):
                        pass  # swallow anything else; answer nothing until the caller hangs up
                    return
                if kind == "5xx":
                    writer.write(_response(503, {}, {"error": "injected 503"}))
                elif kind == "429":
                    writer.write(_response(429, {"Retry-After": arg}, {"error": "slow down"}))
                elif kind == "429-date":
                    when = formatdate(time.time() + float(arg), usegmt=True)
                    writer.write(_response(429, {"Retry-After": when}, {"error": "slow down"}))
                else:
                    if kind == "delay":
                        await asyncio.sleep(float(arg))
                    writer.write(await self._forward(head + body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(self, raw: bytes) -> bytes:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(raw)
            await up_writer.drain()
            answer = await _read_message(up_reader)
            if answer is None:
                return _response(502, {}, {"error": "sink closed the connection"})
            return answer[0] + answer[1]
        finally:
            up_writer.close()


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One HTTP/1.1 message with a Content-Length body (all this test traffic has one), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    length = int(_header(head, b"content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return head, body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _header(head: bytes, wanted: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == wanted:
            return value.strip().decode("latin-1")
    return None


def _fault_of(body: bytes) -> tuple[str | None, str]:
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        return None, "none"
    if not isinstance(data, dict):
        return None, "none"
    event_id = str(data["id"]) if "id" in data else None
    return event_id, str(data.get("fault") or "none")


def _response(status: int, headers: dict[str, str], body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    reason = {503: "Service Unavailable", 429: "Too Many Requests", 502: "Bad Gateway"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data
