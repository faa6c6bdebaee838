"""The downstream system of the fault tests: a loopback HTTP sink that records every delivery.

It runs on the standard library's threaded HTTP server in its own threads, so it keeps answering
whatever the test's event loop or the service under test is doing. Like a real idempotent API it
applies an effect once per `Idempotency-Key` (a repeat gets the first answer) and records every
delivery: which key, which event (the `id` of the JSON body), what it answered and when. A rule
can fail deliveries (say an event's first one with a 503, or a 429 with `Retry-After`), so runs
sit in every phase: in flight at the sink, retrying inline, or suspended until a due time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (event id, number of this delivery of the event: 1, 2, ...) -> (status, headers) to fail it with,
# or None to apply it
Failure = Callable[[str, int], tuple[int, dict[str, str]] | None]


@dataclass(frozen=True)
class Delivery:
    key: str | None  # the Idempotency-Key header
    event_id: str | None  # the `id` of the JSON body
    status: int  # what the sink answered
    at: float  # time.monotonic() when it arrived


class Sink:
    """A threaded HTTP sink on 127.0.0.1 that records deliveries; see the module docstring."""

    def __init__(self, *, delay: float = 0.0, failure: Failure | None = None) -> None:
        self.delay = delay
        self.failure = failure
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._answers: dict[str, dict[str, Any]] = {}  # key -> first successful answer
        self._seen: dict[str, int] = {}  # event id -> deliveries so far
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                sink._handle(self, raw)

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a caller killed mid-request resets its connection: expected here, not news

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Sink:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ handling
    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        arrived = time.monotonic()
        key = handler.headers.get("idempotency-key")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        event_id = str(body["id"]) if isinstance(body, dict) and "id" in body else None
        status, headers, answer = self._decide(key, event_id)
        if self.delay and status < 300:
            time.sleep(self.delay)  # the effect lands late: a caller killed meanwhile never hears of it
        with self._lock:
            if status < 300 and key is not None:
                answer = self._answers.setdefault(key, answer)
            self.deliveries.append(Delivery(key, event_id, status, arrived))
        data = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the caller went away (killed mid-request): the effect stands, as in a real system

    def _decide(self, key: str | None, event_id: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.failure is not None and event_id is not None:
            with self._lock:
                nth = self._seen[event_id] = self._seen.get(event_id, 0) + 1
            failure = self.failure(event_id, nth)
            if failure is not None:
                status, headers = failure
                return status, headers, {"error": "injected", "status": status}
        return 201, {}, {"ok": True, "key": key, "effect": f"effect-{event_id}"}

    # ------------------------------------------------------------------------------- queries
    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def applied(self) -> dict[str, list[Delivery]]:
        """Successful deliveries by idempotency key (more than one: a repeat with the same key)."""
        out: dict[str, list[Delivery]] = {}
        for d in self.snapshot():
            if d.status < 300 and d.key is not None:
                out.setdefault(d.key, []).append(d)
        return out

    def keys_by_event(self) -> dict[str, set[str | None]]:
        """Every idempotency key each event was delivered with (the promise: exactly one)."""
        out: dict[str, set[str | None]] = {}
        for d in self.snapshot():
            if d.event_id is not None:
                out.setdefault(d.event_id, set()).add(d.key)
        return out

    def of_event(self, event_id: str) -> list[Delivery]:
        return [d for d in self.snapshot() if d.event_id == event_id]
