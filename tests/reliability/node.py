"""`syncline serve` as a real process for the fault tests, the small project it serves, and the
admin API reads the tests make (runs, one run with its steps, dead letters, replay).

A node is started with `python -m runtime.cli serve` on a free loopback port with a short worker
lease (the hidden `--lease` option), so the runs of a killed node are picked up again within
seconds. Its output goes to a log file whose tail is shown when it fails to start.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
VIEWER = "reliability-viewer-token"
OPERATOR = "reliability-operator-token"
FINAL = frozenset({"succeeded", "failed", "dead_lettered", "filtered", "exception", "rejected", "cancelled"})
ACTIVE = ("queued", "running", "retrying", "waiting", "held")
# read straight from the store: steps journaled as succeeded more than once in one run (want none)
JOURNAL_TWICE = (
    "SELECT run_id, step_key, count(*) FROM syncline_steps WHERE status = 'succeeded' "
    "GROUP BY run_id, step_key HAVING count(*) > 1"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------- project

SINK_CONNECTION = """\
kind: Connection
name: sink
type: http
system: sink
config:
  base_url: "{{ env('SINK_URL') }}"
  timeout: 2s
operations:
  deliver:
    method: POST
    path: /effects
    body: "{{ params.body }}"
    entity: effect
    effect: create
"""


def webhook_flow(
    name: str,
    path: str,
    *,
    retry: str = "{attempts: 6, backoff: exponential, initial: 100ms, max: 5s}",
    timeout: str = "2s",
    ordering_key: str | None = None,
) -> str:
    """A flow: a webhook deduplicated by `input.id` whose one step posts the payload to the sink.

    The step sends no explicit idempotency key, so the engine's default key (a hash of flow, run
    and step) is what the sink sees: stable across resumes, retries and replays of one event.
    With an `ordering_key` its runs wait in the queue and are claimed (a run without one is handed
    straight to a free worker slot when intake commits it).
    """
    ordering = f"\n            ordering_key: {json.dumps(ordering_key)}" if ordering_key else ""
    return textwrap.dedent(
        f"""\
        kind: Flow
        name: {name}
        business_keys:
          event: "{{{{ input.id }}}}"
        trigger:
          webhook:
            path: {path}
            idempotency_key: "{{{{ input.id }}}}"
            max_body: 512KB{ordering}
        steps:
          - id: deliver
            call: sink.deliver
            with: {{body: "{{{{ input }}}}"}}
            timeout: {timeout}
            retry: {retry}
        on_failure: dead_letter
        """
    )


def write_project(root: Path, flows: Mapping[str, str]) -> Path:
    """A project folder with the sink connection and `flows` (file name -> YAML)."""
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "systems").mkdir(exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: reliability\n")
    (root / "systems" / "sink.yaml").write_text(SINK_CONNECTION)
    for name, text in flows.items():
        (root / "flows" / f"{name}.yaml").write_text(text)
    return root


# ---------------------------------------------------------------------------------------- node


class Node:
    """One `syncline serve` process; `start` again after `kill` restarts it on the same port and store."""

    def __init__(
        self,
        project: Path,
        store: str,
        log_path: Path,
        *,
        env: Mapping[str, str],
        lease: float = 2.0,
        workers: int = 4,
        grace: float = 5.0,
    ) -> None:
        self.project = project
        self.store = store
        self.log_path = log_path
        self.env = {
            **os.environ,
            "SYNCLINE_VIEWER_TOKENS": VIEWER,
            "SYNCLINE_OPERATOR_TOKENS": OPERATOR,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.lease = lease
        self.workers = workers
        self.grace = grace
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--project",
            str(self.project),
            "--store",
            self.store,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--lease",
            str(self.lease),
            "--grace",
            str(self.grace),
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        assert not self.alive(), "the node is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"---- start {self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz answers 200 (the lifespan started: store open, workers running)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise AssertionError(f"syncline serve exited ({self.returncode()}):\n{self.log_tail()}")
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"syncline serve not ready after {timeout}s:\n{self.log_tail()}")

    async def restart(self) -> None:
        self.start()
        await self.wait_ready()

    def kill(self) -> None:
        """`kill -9`: no shutdown code runs, in-flight requests and runs are cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), SIGKILL if it is still running after `timeout`; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return proc.returncode

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# ----------------------------------------------------------------------------------- admin API


def auth(token: str = VIEWER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def list_runs(client: httpx.AsyncClient, base: str, **query: str) -> list[dict[str, Any]]:
    """Every run matching `query` (all pages), newest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 500, **query}
    while True:
        reply = await client.get(base + "/api/v1/runs", params=params, headers=auth())
        reply.raise_for_status()
        page = reply.json()
        found.extend(page["runs"])
        if page.get("next_before") is None:
            return found
        params["before"] = page["next_before"]


async def get_run(client: httpx.AsyncClient, base: str, run_id: str) -> dict[str, Any] | None:
    reply = await client.get(f"{base}/api/v1/runs/{run_id}", headers=auth())
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()
    return data


async def dead_letters(client: httpx.AsyncClient, base: str, *, include_replayed: bool = False) -> list[dict[str, Any]]:
    params = {"limit": "1000", "include_replayed": "true" if include_replayed else "false"}
    reply = await client.get(base + "/api/v1/dead-letters", params=params, headers=auth())
    reply.raise_for_status()
    letters: list[dict[str, Any]] = reply.json()["dead_letters"]
    return letters


async def replay(client: httpx.AsyncClient, base: str, run_id: str) -> httpx.Response:
    return await client.post(f"{base}/api/v1/runs/{run_id}/replay", json={}, headers=auth(OPERATOR))


async def eventually(check: Callable[[], Awaitable[str | None]], *, timeout: float, interval: float = 0.2) -> None:
    """Call `check` until it returns None (done); fail with its last complaint after `timeout`."""
    deadline = time.monotonic() + timeout
    complaint: str | None = "never checked"
    while time.monotonic() < deadline:
        complaint = await check()
        if complaint is None:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s: {complaint}")
