"""The shared base of the vendor simulators: a Starlette app on a loopback uvicorn server.

A `VendorSim` subclass lists its vendor routes (`vendor_routes`) and keeps its records in `self.data`
(collection → id → record). The base adds, for every simulator:

- a request log (`self.requests`: method, path, query, headers, body) for tests to inspect;
- fault injection, before the vendor's own handling: `inject(status, ...)` from Python or
  `POST /_sim/faults {"status": 503, "path": "^/api/", "method": "POST", "times": 1, "body": …,
  "headers": {"Retry-After": "1"}}` over HTTP; a fault answers the next `times` matching requests;
  the vendor's own rate-limit answer comes from `rate_limited()` (`inject_rate_limit(times)`);
- `GET /_sim/state` (records and counters) and `POST /_sim/reset` (the starting dataset again);
- `json(value, status, headers)`: exact decimals, the vendor's content type.
- `start(tls=(certificate file, key file))`: HTTPS on loopback, for vendor SDKs that refuse plain HTTP.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.demo.simulators import ServerThread
from runtime.expr import dumps, loads

Handler = Callable[[Request], Awaitable[Response]]


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None, media: str = "application/json"
) -> Response:
    """A JSON answer with exact decimals."""
    return Response(dumps(value), status_code=status, media_type=media, headers=headers)


@dataclass
class Fault:
    """An injected answer for the next `times` requests that match `method` and the `path` pattern."""

    status: int
    path: str = ""
    method: str | None = None
    times: int = 1
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit: bool = False  # answer with the vendor's own rate-limit response instead of `body`

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and re.search(self.path, path) is not None


@dataclass
class Seen:
    """One request as the simulator received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return loads(self.body) if self.body else None


class VendorSim:
    """Common behaviour of the vendor simulators (see the module docstring)."""

    name = "sim"

    def __init__(self) -> None:
        self.lock = threading.RLock()  # reentrant: seed() under reset() may call next_number()
        self.requests: list[Seen] = []
        self.faults: list[Fault] = []
        self.counters: dict[str, int] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.server: ServerThread | None = None
        self.reset()

    # -------------------------------------------------------------------------------- override these

    def seed(self) -> None:
        """Fill `self.data` with the starting dataset."""

    def vendor_routes(self) -> list[BaseRoute]:
        """The vendor's API routes."""
        return []

    def rate_limited(self, fault: Fault) -> Response:
        """The vendor's own answer when its rate limit is exceeded."""
        return json_response({"error": "rate limit exceeded"}, 429, {"Retry-After": "1", **fault.headers})

    # ----------------------------------------------------------------------------------------- state

    def reset(self) -> None:
        with self.lock:
            self.data = {}
            self.counters = {}
            self.faults = []
            self.requests = []
            self.seed()

    def next_number(self, sequence: str, start: int = 1) -> int:
        with self.lock:
            value = self.counters.get(sequence, start - 1) + 1
            self.counters[sequence] = value
            return value

    def inject(self, status: int, *, path: str = "", method: str | None = None, times: int = 1, body: Any = None,
               headers: dict[str, str] | None = None) -> None:  # fmt: skip
        """Answer the next `times` matching requests with `status` (and `body`, `headers`)."""
        self.faults.append(Fault(status, path, method, times, body, dict(headers or {})))

    def inject_rate_limit(self, *, times: int = 1, path: str = "", headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` matching requests with the vendor's rate-limit response."""
        self.faults.append(Fault(429, path, None, times, None, dict(headers or {}), rate_limit=True))

    def seen(self, method: str | None = None, path: str = "") -> list[Seen]:
        """Logged requests (not the simulator's own `/_sim` ones), filtered by method and path pattern."""
        return [s for s in self.requests if (method is None or s.method == method) and re.search(path, s.path)]

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "counters": self.counters, "requests": len(self.requests)}

    # --------------------------------------------------------------------------------------- serving

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    async def _state(self, request: Request) -> Response:
        return json_response(self.snapshot())

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return json_response({"ok": True})

    async def _add_fault(self, request: Request) -> Response:
        spec = loads(await request.body() or b"{}")
        if not isinstance(spec, dict) or not isinstance(spec.get("status"), int):
            return json_response({"error": "a fault needs an integer status"}, 400)
        fault = Fault(
            status=spec["status"],
            path=str(spec.get("path", "")),
            method=spec.get("method"),
            times=int(spec.get("times", 1)),
            body=spec.get("body"),
            headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
            rate_limit=bool(spec.get("rate_limit", False)),
        )
        self.faults.append(fault)
        return json_response({"ok": True})

    def app(self) -> ASGIApp:
        routes: list[BaseRoute] = [
            Route("/_sim/state", self._state, methods=["GET"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
            Route("/_sim/faults", self._add_fault, methods=["POST"]),
            *self.vendor_routes(),
        ]
        inner = Starlette(routes=routes)
        sim = self

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
                await inner(scope, receive, send)
                return
            request = Request(scope, receive)
            body = await request.body()
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            query = scope.get("query_string", b"").decode("latin-1")
            sim.requests.append(Seen(scope["method"], scope["path"], query, headers, body))

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            fault = sim._take_fault(scope["method"], scope["path"])
            if fault is not None:
                if fault.rate_limit:
                    response = sim.rate_limited(fault)
                else:
                    response = json_response(fault.body if fault.body is not None else {"error": "injected fault"},
                                             fault.status, fault.headers)  # fmt: skip
                await response(scope, replay, send)
                return
            await inner(scope, replay, send)

        return app

    def start(self, port: int | None = None, *, tls: tuple[str, str] | None = None) -> VendorSim:
        """Serve on a loopback port in a background thread; over HTTPS when `tls` is (certificate file, key file)."""
        self.server = ServerThread(self.app(), port, tls=tls).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None, "the simulator is not started"
        return self.server.url

    def __enter__(self) -> VendorSim:
        return self.start() if self.server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
