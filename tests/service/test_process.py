"""`syncline serve` as a real process: JSON logs with the run context, secret canaries that must
appear nowhere, SIGHUP reload, graceful SIGTERM (exit 0; unfinished runs released and completed by
the next node), and clear errors for a bad project, a port in use and an unusable store."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runtime.store.factory import open_store
from tests.service.harness import (
    OPERATOR,
    ROOT,
    VIEWER,
    Process,
    Sink,
    bearer,
    serve_process,
    sign,
    wait_ready,
    write_flow,
    write_project,
)

CANARY_HOOK = "canary-hook-7f3a9c41"
CANARY_TOKEN = "canary-token-b81d2e07"
ENV = {
    "HOOK_SECRET": CANARY_HOOK,
    "SINK_TOKEN": CANARY_TOKEN,
    "SYNCLINE_VIEWER_TOKENS": VIEWER,
    "SYNCLINE_OPERATOR_TOKENS": OPERATOR,
}

VAULT = """\
kind: Connection
name: vault
type: http
system: vault
config:
  base_url: "{url}"
  auth: {{type: bearer, token: "{{{{ secret('SINK_TOKEN') }}}}"}}
  timeout: 10s
operations:
  post: {{method: POST, path: "/{{{{ params.path }}}}", body: "{{{{ params.body }}}}", entity: thing, effect: create}}
"""

ORDERS = """
trigger:
  webhook:
    path: /hooks/orders
    auth: {type: hmac_sha256, secret: "{{ secret('HOOK_SECRET') }}", timestamp_header: X-Timestamp}
steps:
  - id: push
    call: vault.post
    with: {path: echo-headers, body: "{{ input }}"}
"""

LEAKY = """
trigger:
  webhook: {path: /hooks/leaky}
steps:
  - id: push
    call: vault.post
    with: {path: leaky, body: "{{ input }}"}
    retry: {attempts: 2, initial: 10ms, max: 10ms}
"""

SLOW = """
trigger:
  webhook: {path: /hooks/slow}
steps:
  - id: slow
    call: vault.post
    with: {path: slow, body: "{{ input }}"}
  - id: after
    call: vault.post
    with: {path: after, body: "{{ input }}"}
"""

EXTRA = """
trigger:
  webhook: {path: /hooks/extra}
steps:
  - id: push
    call: vault.post
    with: {path: extra, body: "{{ input }}"}
"""


def make_project(tmp_path: Path, sink: Sink) -> Path:
    project = write_project(tmp_path / "p", sink.url, {"orders": ORDERS, "leaky": LEAKY, "slow": SLOW})
    (project / "systems" / "vault.yaml").write_text(VAULT.format(url=sink.url))
    return project


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


async def start(tmp_path: Path, sink: Sink, *args: str) -> Process:
    process = serve_process(make_project(tmp_path, sink), store_url(tmp_path), env=ENV, args=args)
    await wait_ready(process)
    return process


def stop(process: Process, timeout: float = 15.0) -> tuple[int, float]:
    started = time.monotonic()
    process.proc.send_signal(signal.SIGTERM)
    code = process.proc.wait(timeout)
    return code, time.monotonic() - started


async def wait_status(client: httpx.AsyncClient, url: str, statuses: set[str], timeout: float = 10.0) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        run = (await client.get(url, headers=bearer(VIEWER))).json()
        if run.get("status") in statuses:
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)


async def stored_run(tmp_path: Path, run_id: str) -> dict:  # type: ignore[type-arg]
    store = open_store(store_url(tmp_path), tmp_path)
    await store.open()
    try:
        run = await store.get_run(run_id)
        assert run is not None
        return {"status": run.status, "lease_owner": run.lease_owner, "lease_expires": run.lease_expires}
    finally:
        await store.close()


async def test_json_logs_with_run_context_and_no_secret_anywhere(tmp_path: Path, sink: Sink) -> None:
    sink.rule("/echo-headers", handler=lambda hit: (200, {"saw": hit.headers}))
    sink.rule("/leaky", handler=lambda hit: (500, {"error": f"rejected {hit.headers['authorization']}"}))
    process = await start(tmp_path, sink)
    api: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
            body = json.dumps({"id": "L-1"}).encode()
            ok = await client.post(
                "/hooks/orders", content=body, headers={**sign(body, CANARY_HOOK), "X-Correlation-ID": "corr-logs-1"}
            )
            assert ok.status_code == 202, ok.text
            bad = await client.post("/hooks/orders", content=body, headers=sign(body, "guessed-secret"))
            assert bad.status_code == 401
            api.append(bad.text)
            leaky = await client.post("/hooks/leaky", json={"id": "L-2"})
            done = await wait_status(client, f"/api/v1/runs/{ok.json()['run_id']}", {"succeeded"})
            dead = await wait_status(client, f"/api/v1/runs/{leaky.json()['run_id']}", {"dead_lettered"})
            assert done["output"]["saw"]["authorization"] == "Bearer ***"
            assert dead["error"] and CANARY_TOKEN not in json.dumps(dead)
            for path in ("/api/v1/runs", "/api/v1/dead-letters", "/api/v1/flows", "/api/v1/flows/orders", "/metrics"):
                api.append((await client.get(path, headers=bearer(VIEWER))).text)
            api.append(json.dumps(done))
            api.append(json.dumps(dead))
            dry = await client.post(
                f"/api/v1/runs/{dead['id']}/replay", json={"dry_run": True}, headers=bearer(OPERATOR)
            )
            api.append(dry.text)
    finally:
        code, _ = stop(process)
    assert code == 0, process.logs()
    assert any(CANARY_TOKEN in str(h.headers) for h in sink.hits)  # the secret was really used

    lines = [json.loads(line) for line in process.logs().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    run_lines = [e for e in lines if "run_id" in e]
    assert run_lines, "no log line carries a run id"
    assert all(e.get("flow") and e.get("correlation_id") for e in run_lines)
    assert any(e["run_id"] == dead["id"] and e["flow"] == "leaky" and e.get("step") == "push" for e in run_lines)

    for canary in (CANARY_HOOK, CANARY_TOKEN):
        assert canary not in process.logs()
        assert canary not in "".join(process.stdout)
        for text in api:
            assert canary not in text
        for file in tmp_path.glob("state.db*"):
            assert canary.encode() not in file.read_bytes(), file.name


async def test_sighup_reloads_the_project(tmp_path: Path, sink: Sink) -> None:
    process = await start(tmp_path, sink)
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
            assert (await client.post("/hooks/extra", json={})).status_code == 404
            write_flow(tmp_path / "p", "extra", EXTRA)
            process.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while (answer := await client.post("/hooks/extra", json={"n": 1})).status_code == 404:
                assert time.monotonic() < deadline, process.logs()
                await asyncio.sleep(0.1)
            assert answer.status_code == 202
            assert process.proc.poll() is None
    finally:
        assert stop(process)[0] == 0


async def test_sigterm_lets_an_in_flight_run_finish_and_exits_0(tmp_path: Path, sink: Sink) -> None:
    sink.rule("/slow", delay=1.0)
    process = await start(tmp_path, sink, "--grace", "5")
    async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
        run_id = (await client.post("/hooks/slow", json={"id": "G-1"})).json()["run_id"]
        await wait_status(client, f"/api/v1/runs/{run_id}", {"running"})
    code, took = stop(process)
    assert code == 0, process.logs()
    assert took < 5
    assert (await stored_run(tmp_path, run_id))["status"] == "succeeded"
    assert len(sink.on("/after")) == 1


async def test_sigterm_releases_a_run_that_cannot_finish(tmp_path: Path, sink: Sink) -> None:
    slow = sink.rule("/slow", delay=5.0)
    process = await start(tmp_path, sink, "--grace", "1")
    async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
        run_id = (await client.post("/hooks/slow", json={"id": "G-2"})).json()["run_id"]
        await wait_status(client, f"/api/v1/runs/{run_id}", {"running"})
        await asyncio.sleep(0.1)
    code, took = stop(process)
    assert code == 0, process.logs()
    assert took < 4, took
    assert await stored_run(tmp_path, run_id) == {"status": "queued", "lease_owner": None, "lease_expires": None}

    slow.delay = 0
    second = serve_process(tmp_path / "p", store_url(tmp_path), env=ENV)
    try:
        await wait_ready(second)
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as client:
            run = await wait_status(client, f"/api/v1/runs/{run_id}", {"succeeded"})
        assert [s["step"] for s in run["steps"]] == ["slow", "after"]
        keys = {h.headers["idempotency-key"] for h in sink.on("/slow")}
        assert len(sink.on("/slow")) == 2 and len(keys) == 1  # the repeat carries the same key
    finally:
        assert stop(second)[0] == 0


def serve_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "serve", *args],
        cwd=ROOT,
        env={**ENV, **(env or {}), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_project_with_errors_prints_diagnostics_and_exits_1(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "http://127.0.0.1:9", {})
    write_flow(project, "broken", "trigger: {webhook: {path: /x}}\nsteps:\n  - call: nowhere.post\n")
    done = serve_once("--project", str(project), "--port", "0")
    assert done.returncode == 1
    assert "broken.yaml:5:" in done.stdout + done.stderr and "nowhere" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path, sink: Sink) -> None:
    project = make_project(tmp_path, sink)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve_once("--project", str(project), "--store", store_url(tmp_path), "--port", str(port))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"127.0.0.1:{port}" in output and "in use" in output
    assert "Traceback" not in output and output.count("\n") <= 3, output


@pytest.mark.parametrize("url", ["sqlite:////nonexistent/folder/state.db", "postgresql://postgres@127.0.0.1:9/x"])
def test_unusable_store_is_a_clear_error(tmp_path: Path, sink: Sink, url: str) -> None:
    project = make_project(tmp_path, sink)
    done = serve_once("--project", str(project), "--store", url, "--port", "0")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "store" in output.lower(), output
