"""Test helpers for the service suite: a recording HTTP sink, small projects written into a folder,
and Syncline nodes served by uvicorn on loopback ports (in the test's event loop or as a subprocess).

Everything goes through real sockets: webhooks and the admin API are called with httpx, and flows
call the sink (its own uvicorn thread) through the real `http` connector.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.demo.simulators import ServerThread, free_port
from runtime.expr import dumps, loads
from runtime.service.app import ServiceApp, build_app
from runtime.service.service import Service
from runtime.store.base import RunRecord

ROOT = Path(__file__).resolve().parents[2]
VIEWER = "viewer-token-0001"
OPERATOR = "operator-token-0001"
TOKENS = {VIEWER: "viewer", OPERATOR: "operator"}
HOOK_SECRET = "hook-secret-value-0001"
FINAL = frozenset({"succeeded", "failed", "dead_lettered", "filtered", "exception", "rejected", "cancelled"})


# ------------------------------------------------------------------------------------------ sink


@dataclass
class Hit:
    """One request the sink received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    start: float
    end: float = 0.0


@dataclass
class Rule:
    """How the sink answers one path: after `delay` seconds, `fail_next` times `fail_status`, then
    `status` with `body` (or what `handler` returns)."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    handler: Callable[[Hit], tuple[int, Any]] | None = None


class Sink:
    """A recording HTTP target on a loopback port, served by uvicorn in its own thread."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.rules: dict[str, Rule] = {}
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])
        self.server = ServerThread(app)
        self.server.config.timeout_graceful_shutdown = 1  # do not wait for requests a test left sleeping

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Sink:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.rules.clear()

    def rule(self, path: str, **settings: Any) -> Rule:
        rule = Rule(**settings)
        self.rules[path] = rule
        return rule

    def on(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        hit = Hit(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.time(),
        )
        with self._lock:
            self.hits.append(hit)
        rule = self.rules.get(request.url.path, Rule())
        if rule.delay:
            await asyncio.sleep(rule.delay)
        status, answer = rule.status, rule.body
        if rule.fail_next > 0:
            rule.fail_next -= 1
            status, answer = rule.fail_status, {"error": "injected failure"}
        elif rule.handler is not None:
            status, answer = rule.handler(hit)
        if answer is None:
            answer = {"ok": True, "path": hit.path, "n": len(self.on(hit.path)), "echo": body}
        hit.end = time.time()
        return Response(dumps(answer), status_code=status, media_type="application/json")


# --------------------------------------------------------------------------------------- projects

SINK_CONNECTION = """\
kind: Connection
name: sink
type: http
system: sinkhole
config:
  base_url: "{url}"
  timeout: 5s
operations:
  post:
    method: POST
    path: "/{{{{ params.path }}}}"
    body: "{{{{ params.body }}}}"
    entity: thing
    effect: create
  items:
    method: GET
    path: /items
    query: {{since: "{{{{ params.since }}}}"}}
    entity: thing
    effect: read
"""

EGRESS_POLICY = """\
kind: Policy
name: egress
rules:
  - id: egress
    match: {connector: http}
    allow_hosts: ["127.0.0.1"]
"""

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "customer"],
    "properties": {
        "id": {"type": "string"},
        "customer": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string"}, "email": {"type": "string", "format": "email"}},
        },
        "lines": {
            "type": "array",
            "items": {"type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}},
        },
    },
}


def write_project(root: Path, sink_url: str, flows: Mapping[str, str], *, project_extra: str = "") -> Path:
    """A project folder: syncline.yaml, the sink connection, an egress policy, `flows` (name → YAML)
    and schemas/order.json."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text(
        "kind: Project\nname: service-test\ndefaults:\n  retry: {attempts: 1}\n" + textwrap.dedent(project_extra)
    )
    for folder in ("systems", "governance", "flows", "schemas"):
        (root / folder).mkdir(exist_ok=True)
    (root / "systems" / "sink.yaml").write_text(SINK_CONNECTION.format(url=sink_url))
    (root / "governance" / "egress.yaml").write_text(EGRESS_POLICY)
    (root / "schemas" / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    for name, text in flows.items():
        write_flow(root, name, text)
    return root


def write_flow(root: Path, name: str, text: str) -> None:
    (root / "flows" / f"{name}.yaml").write_text(f"kind: Flow\nname: {name}\n" + textwrap.dedent(text))


# ------------------------------------------------------------------------------------------- nodes


def sign(body: bytes, secret: str = HOOK_SECRET, *, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Timestamp": str(stamp), "X-Signature": signature}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Node:
    """One Syncline service served by uvicorn inside the test's event loop."""

    service: Service
    app: ServiceApp
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str
    client: httpx.AsyncClient
    lifespan: bool = False  # started and stopped by the app's lifespan (else by the harness, faster)
    stopped: bool = False

    async def admin(self, method: str, path: str, token: str = OPERATOR, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=bearer(token), **kwargs)

    async def run(self, run_id: str) -> dict[str, Any]:
        answer = await self.admin("GET", f"/api/v1/runs/{run_id}", VIEWER)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def wait_run(
        self, run_id: str, statuses: frozenset[str] | set[str] = FINAL, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = await self.run(run_id)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s: {run}")
            await asyncio.sleep(0.05)

    async def runs(self, **query: Any) -> list[dict[str, Any]]:
        answer = await self.admin("GET", "/api/v1/runs", VIEWER, params=query)
        assert answer.status_code == 200, answer.text
        runs: list[dict[str, Any]] = answer.json()["runs"]
        return runs

    async def stop(self, grace: float = 5.0) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.client.aclose()
        self.server.should_exit = True
        if self.lifespan:  # uvicorn's own shutdown: ticks and waits of 0.1 s, then the lifespan stops the service
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, grace + 10)
            return
        await self.service.stop(grace)
        for listener in self.server.servers:
            listener.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_node(
    project: Path,
    store_url: str | None = None,
    *,
    tokens: dict[str, str] | None = None,
    grace: float = 5.0,
    lifespan: bool = False,
    **options: Any,
) -> Node:
    """Start a service for `project` on a free loopback port (by the app's lifespan, or before the
    server as `syncline serve` does) and wait until uvicorn has started."""
    options.setdefault("lease", 2.0)
    options.setdefault("poll_interval", 0.05)
    service = Service(project, store_url or f"sqlite:///{project / 'state.db'}", **options)
    if not lifespan:
        await service.start()
    app = build_app(service, manage_lifecycle=lifespan, grace=grace, tokens=TOKENS if tokens is None else tokens)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped before it started")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    return Node(service, app, server, task, url, httpx.AsyncClient(base_url=url, timeout=10), lifespan)


async def until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def run_summary(run: RunRecord) -> str:
    return f"{run.id} {run.flow} {run.status}"


# ------------------------------------------------------------------------------------- subprocess


@dataclass
class Process:
    """`syncline serve` as a child process, its stderr collected by a thread."""

    proc: subprocess.Popen[bytes]
    port: int
    stderr: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return "".join(self.stderr)


def serve_process(project: Path, store_url: str, *, env: Mapping[str, str], args: tuple[str, ...] = ()) -> Process:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--project",
            str(project),
            "--store",
            store_url,
            "--port",
            str(port),
            *args,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process = Process(proc, port)

    def pump(stream: Any, into: list[str]) -> None:
        for line in iter(stream.readline, b""):
            into.append(line.decode("utf-8", "replace"))

    threading.Thread(target=pump, args=(proc.stderr, process.stderr), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stdout, process.stdout), daemon=True).start()
    return process


async def wait_ready(process: Process, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.proc.poll() is not None:
                raise AssertionError(f"server exited {process.proc.returncode}: {process.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{process.url}/readyz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"server not ready within {timeout}s: {process.logs()}")
