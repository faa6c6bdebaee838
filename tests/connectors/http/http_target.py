"""Test harness for the http connector: a real HTTP server playing the target system, and helpers.

Each server runs `http.server.ThreadingHTTPServer` in a thread. A test gives it an `app`: a function
from the received `Seen` request to a `Reply` (status, headers, body, optional delay or abrupt reset).
The server records every request and counts every accepted TCP connection, so tests can prove that
a refused call never reached it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.http import CONNECTOR, HttpConfig, HttpConnector, HttpOperation
from runtime.connector_api import CallRequest, CallResult, ConnectorContext


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    request_line: str = ""  # exactly as received, e.g. `GET /a?x=1 HTTP/1.1`

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False  # close the connection abruptly (RST) instead of answering
    chunks: Iterable[bytes] | None = None  # send a chunked body with no Content-Length


def json_reply(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


App = Callable[[Seen], Reply]


class TargetServer:
    def __init__(self, app: App | None = None, host: str = "127.0.0.1") -> None:
        self.app: App = app or (lambda seen: json_reply({"ok": True}))
        self.requests: list[Seen] = []
        self.connections = 0
        self._stop = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = Seen(self.command, self.path, headers, body, self.requestline)
                target.requests.append(seen)
                reply = target.app(seen)
                if reply.delay:
                    target._stop.wait(reply.delay)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                payload = reply.body
                if isinstance(payload, str):
                    payload = payload.encode()
                elif not isinstance(payload, bytes):
                    payload = json.dumps(payload).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                target.connections += 1
                return True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up early (size limit, timeouts) are part of the tests

        self._server = Server((host, 0), Handler)
        self.port: int = self._server.server_address[1]
        self.host = host
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


class FakeClock:
    """A clock the test moves by hand (`ConnectorContext.clock`)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_connector(
    base_url: str,
    *,
    operations: dict[str, dict[str, Any]] | None = None,
    allow_hosts: tuple[str, ...] | None = None,
    clock: Callable[[], float] | None = None,
    redact: Callable[[str], str] = lambda text: text,
    **config: Any,
) -> HttpConnector:
    model = HttpConfig.model_validate({"base_url": base_url, **config})
    ops = {name: HttpOperation.model_validate(spec) for name, spec in (operations or {"get": {}}).items()}
    context = ConnectorContext(connection="test", redact=redact, allow_hosts=allow_hosts, clock=clock)
    connector = CONNECTOR.create(model, ops, context)
    assert isinstance(connector, HttpConnector)
    return connector


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


async def call_once(
    connector: HttpConnector, operation: str = "get", spec: dict[str, Any] | None = None, **request: Any
) -> CallResult:
    """One call, then close the connector."""
    try:
        return await connector.call(CallRequest(operation=operation, spec=spec or {}, **request))
    finally:
        await connector.aclose()
