"""The hostile-payload probe of issue 8: items 1, 3 and 5 sent to a running `syncline serve` at once,
while `/healthz` is probed every 20 ms.

Sent: a signed `{"qty": 1e999999999}` to a flow doing `| int` and a huge list index (item 1); a canary
secret used in several derived forms, in a call's Basic header and a business exception (item 3); a
body with a lone surrogate, a sync `respond` header carrying CR/LF from the payload, and a body that
trickles in slower than the body timeout (item 5). It reports what each got, the health probe's
latencies, and every place the canary (or a form derived from it) was found.

Run by hand for the latency figure (`python -m tests.probes.hostile`, exit 1 when a probe took more
than 100 ms, a run ended wrongly or the canary leaked); `tests/service/test_hostile_probe.py` runs
it and checks the outcomes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.service.harness import (
    OPERATOR,
    VIEWER,
    Sink,
    bearer,
    serve_process,
    sign,
    wait_ready,
    write_project,
)

HOOK = "hook-secret-probe-000001"
CANARY = "vbnq-rtzk-mwlp-xhdf"
BASIC = base64.b64encode(f"user:{CANARY}".encode()).decode()
AUTH = "{type: hmac_sha256, secret: \"{{ secret('HOOK_SECRET') }}\", timestamp_header: X-Timestamp}"
FLOWS = {
    "qty": f"""
trigger:
  webhook: {{path: /hooks/qty, auth: {AUTH}}}
on_failure: dead_letter
steps:
  - id: qty
    set: {{id: "{{{{ input.id }}}}", qty: "{{{{ input.qty | int }}}}"}}
""",
    "pick": f"""
trigger:
  webhook: {{path: /hooks/pick, auth: {AUTH}}}
steps:
  - id: pick
    set: {{picked: "{{{{ [1, 2, 3][input.x] }}}}"}}
""",
    "canary": """
trigger:
  webhook: {path: /hooks/canary}
on_failure: dead_letter
steps:
  - id: derive
    set:
      basic: "{{ ('user:' ~ secret('CANARY_PW')) | b64encode }}"
      shout: "{{ secret('CANARY_PW') | upper }}"
      spaced: "{{ secret('CANARY_PW') | list | join(' ') }}"
      doc: "{{ {'pw': secret('CANARY_PW')[2:14]} | tojson }}"
  - id: login
    call: vault.login
    with: {auth: "Basic {{ vars.basic }}", body: {who: "{{ vars.doc }}"}}
  - id: refuse
    fail: {code: CANARY, message: "refused {{ vars.shout }} / {{ vars.spaced }}"}
""",
    "inject": """
trigger:
  webhook: {path: /hooks/inject, mode: sync, sync_timeout: 5s}
steps:
  - id: answer
    respond:
      status: 200
      headers: {X-Order: "{{ input.id }}"}
      body: {ok: true}
""",
}
VAULT = """\
kind: Connection
name: vault
type: http
system: vault
config: {{base_url: "{url}", timeout: 10s}}
operations:
  login:
    method: POST
    path: /login
    headers: {{Authorization: "{{{{ params.auth }}}}"}}
    body: "{{{{ params.body }}}}"
    entity: session
    effect: create
"""
PROJECT_EXTRA = "service:\n  body_timeout: 500ms\n"
LATENCY_BAR = 0.100  # the bar for /healthz while runs misbehave


@dataclass
class Report:
    health: list[float] = field(default_factory=list)  # seconds per /healthz answer
    health_failures: list[str] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> run detail
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # name -> status, body
    leaks: list[str] = field(default_factory=list)
    sink_authorization: list[str] = field(default_factory=list)
    exit_code: int | None = None
    traceback_in_logs: bool = False

    def summary(self) -> str:
        h = sorted(self.health)
        p99 = h[int(len(h) * 0.99) - 1] if h else float("nan")
        return (
            f"/healthz: {len(h)} probes, p50 {statistics.median(h) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {max(h) * 1000:.1f} ms, {len(self.health_failures)} failed; "
            f"runs: {', '.join(k + '=' + str(v.get('status')) for k, v in self.runs.items())}; "
            f"answers: {', '.join(f'{k}={v[0]}' for k, v in self.answers.items())}; canary leaks: {len(self.leaks)}"
        )


def canary_forms() -> list[str]:
    forms = {CANARY, CANARY.upper(), BASIC, " ".join(CANARY), json.dumps({"pw": CANARY[2:14]})}
    forms |= {CANARY[i : i + 5] for i in range(len(CANARY) - 4)}
    forms |= {BASIC[i : i + 12] for i in range(len(BASIC) - 11)}
    return sorted(forms)


async def _probe_health(client: httpx.AsyncClient, report: Report, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            answer = await client.get("/healthz", timeout=5.0)
            if answer.status_code != 200:
                report.health_failures.append(f"status {answer.status_code}")
        except httpx.HTTPError as exc:
            report.health_failures.append(type(exc).__name__)
        report.health.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def _signed(client: httpx.AsyncClient, path: str, body: bytes) -> str:
    answer = await client.post(path, content=body, headers=sign(body, HOOK))
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def _ended(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}", headers=bearer(OPERATOR))).json()
        if run["status"] in {"succeeded", "failed", "dead_lettered", "exception"}:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


def _trickle(port: int, timeout: float) -> int:
    """A body announced as 1,000 bytes, sent one byte every 100 ms: the status the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = (
            "POST /hooks/inject HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{"
        )
        sock.sendall(head.encode())
        sock.settimeout(0.1)
        reply = b""
        for _ in range(100):
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
                continue
            if not chunk:
                break
            reply += chunk
            if b"\r\n" in reply:
                break
        return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else 0


async def probe(folder: Path) -> Report:
    """Start a node on a project in `folder`, send everything, look everywhere; the node is stopped after."""
    report = Report()
    sink = Sink().start()
    try:
        project = write_project(folder / "project", sink.url, FLOWS, project_extra=PROJECT_EXTRA)
        (project / "systems" / "vault.yaml").write_text(VAULT.format(url=sink.url))
        env = {
            "HOOK_SECRET": HOOK,
            "CANARY_PW": CANARY,
            "SYNCLINE_VIEWER_TOKENS": VIEWER,
            "SYNCLINE_OPERATOR_TOKENS": OPERATOR,
        }
        process = serve_process(project, f"sqlite:///{folder / 'state.db'}", env=env)
        try:
            await wait_ready(process)
            async with httpx.AsyncClient(base_url=process.url, timeout=10.0) as client:
                stop = asyncio.Event()
                prober = asyncio.create_task(_probe_health(client, report, stop))
                ids = {
                    f"poison-{n}": await _signed(client, "/hooks/qty", b'{"id":"D-1","qty":1e999999999}')
                    for n in (1, 2, 3)
                }
                ids["index"] = await _signed(client, "/hooks/pick", b'{"x": 1e999999999}')
                ids["canary"] = (await client.post("/hooks/canary", json={"id": "C-1"})).json()["run_id"]
                surrogate = await client.post(
                    "/hooks/canary", content=b'{"id": "\\ud800"}', headers={"Content-Type": "application/json"}
                )
                report.answers["surrogate"] = (surrogate.status_code, surrogate.json())
                inject = await client.post("/hooks/inject", json={"id": "A\r\nSet-Cookie: x=1"})
                report.answers["crlf_header"] = (inject.status_code, inject.json())
                slow = await asyncio.get_running_loop().run_in_executor(None, _trickle, process.port, 10.0)
                report.answers["slow_body"] = (slow, {})
                ids["normal"] = await _signed(client, "/hooks/qty", b'{"id": "D-2", "qty": "12"}')
                for name, run_id in ids.items():
                    report.runs[name] = await _ended(client, run_id)
                stop.set()
                await prober

                seen = [json.dumps(report.runs), json.dumps(report.answers)]
                for path in ("/api/v1/runs?limit=100", "/api/v1/dead-letters", f"/api/v1/runs/{ids['canary']}"):
                    for token in (VIEWER, OPERATOR):
                        seen.append((await client.get(path, headers=bearer(token))).text)
                seen.append((await client.get("/metrics")).text)
        finally:
            process.proc.send_signal(signal.SIGTERM)
            try:
                process.proc.wait(15)
            except Exception:
                process.proc.kill()
                process.proc.wait(5)
        report.exit_code = process.proc.returncode
        logs = process.logs()
        report.traceback_in_logs = "Traceback" in logs
        seen.append(logs)
        seen += [p.read_bytes().decode("utf-8", "replace") for p in folder.glob("state.db*")]
        report.sink_authorization = [h.headers.get("authorization", "") for h in sink.on("/login")]
    finally:
        sink.stop()
    text = "\n".join(seen)
    report.leaks = [form for form in canary_forms() if form in text]
    return report


def problems(report: Report, latency_bar: float | None = LATENCY_BAR) -> list[str]:
    """What the report shows to be wrong; empty when the node held."""
    found: list[str] = []
    if report.health_failures:
        found.append(f"/healthz failed {len(report.health_failures)} times: {report.health_failures[:3]}")
    if latency_bar is not None and report.health and max(report.health) > latency_bar:
        found.append(f"/healthz took {max(report.health) * 1000:.0f} ms (bar {latency_bar * 1000:.0f} ms)")
    for name in ("poison-1", "poison-2", "poison-3"):
        run = report.runs.get(name, {})
        if run.get("status") != "dead_lettered" or (run.get("error") or {}).get("reason") != "expression_limit":
            found.append(f"{name}: {run.get('status')} {run.get('error')}")
    if report.runs.get("index", {}).get("output") != {"picked": None}:
        found.append(f"index: {report.runs.get('index')}")
    if report.runs.get("normal", {}).get("output") != {"id": "D-2", "qty": 12}:
        found.append(f"normal: {report.runs.get('normal')}")
    if report.runs.get("canary", {}).get("status") != "exception":  # its `fail` step: a business exception
        found.append(f"canary: {report.runs.get('canary', {}).get('status')}")
    if report.sink_authorization != [f"Basic {BASIC}"]:
        found.append("the call did not carry the real Basic header")
    if report.answers.get("surrogate", (0,))[0] != 400:
        found.append(f"surrogate body: {report.answers.get('surrogate')}")
    status, body = report.answers.get("crlf_header", (0, {}))
    if status != 500 or not str(body.get("location", "")).startswith("/api/v1/runs/"):
        found.append(f"CR/LF respond header: {status} {body}")
    if report.answers.get("slow_body", (0,))[0] != 408:
        found.append(f"slow body: {report.answers.get('slow_body')}")
    if report.leaks:
        found.append(f"canary found: {report.leaks[:5]}")
    if report.exit_code != 0 or report.traceback_in_logs:
        found.append(f"node exit {report.exit_code}, traceback in logs: {report.traceback_in_logs}")
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = asyncio.run(probe(Path(folder)))
    print(report.summary())
    found = problems(report)
    for line in found:
        print("PROBLEM:", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
