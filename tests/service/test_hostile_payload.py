"""Poison payloads against `syncline serve` as a real process (issue 8, item 1).

Observed before the fix: a signed `{"id":"D-1","qty":1e999999999}` to a flow doing
`{{ input.qty | int }}` got its 202, then the node's event loop was stuck building a 415 MB integer:
`/healthz`, the admin API and every other webhook timed out. Now the step fails at once with reason
`expression_limit`, the run is dead-lettered, and the node answers throughout. The server runs in its
own process so that a stuck node shows up here as a health probe that times out, not a stuck test.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx

from tests.service.harness import (
    OPERATOR,
    VIEWER,
    Process,
    Sink,
    bearer,
    serve_process,
    sign,
    wait_ready,
    write_project,
)

HOOK = "hook-secret-hostile-0001"
AUTH = "{type: hmac_sha256, secret: \"{{ secret('HOOK_SECRET') }}\", timestamp_header: X-Timestamp}"
QTY = f"""
trigger:
  webhook: {{path: /hooks/qty, auth: {AUTH}}}
on_failure: dead_letter
steps:
  - id: qty
    set: {{id: "{{{{ input.id }}}}", qty: "{{{{ input.qty | int }}}}"}}
"""
PICK = f"""
trigger:
  webhook: {{path: /hooks/pick, auth: {AUTH}}}
steps:
  - id: pick
    set: {{picked: "{{{{ [1, 2, 3][input.x] }}}}"}}
"""
POISON = b'{"id":"D-1","qty":1e999999999}'
PROBE_TIMEOUT = 5.0  # generous: a node stuck in one render never answers at all


async def post(client: httpx.AsyncClient, path: str, body: bytes) -> str:
    answer = await client.post(path, content=body, headers=sign(body, HOOK))
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def healthy(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz", timeout=PROBE_TIMEOUT)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def ended(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """Wait for the run to end, probing /healthz between looks (each probe must answer)."""
    for _ in range(200):
        await healthy(client)
        run: dict[str, Any] = (
            await client.get(f"/api/v1/runs/{run_id}", headers=bearer(VIEWER), timeout=PROBE_TIMEOUT)
        ).json()
        if run["status"] in {"succeeded", "failed", "dead_lettered"}:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end: {run}")


async def test_poison_payloads_fail_their_runs_while_the_node_stays_answerable(tmp_path: Path, sink: Sink) -> None:
    project = write_project(tmp_path / "p", sink.url, {"qty": QTY, "pick": PICK})
    env = {"HOOK_SECRET": HOOK, "SYNCLINE_VIEWER_TOKENS": VIEWER, "SYNCLINE_OPERATOR_TOKENS": OPERATOR}
    process: Process = serve_process(project, f"sqlite:///{tmp_path / 'state.db'}", env=env)
    try:
        await wait_ready(process)
        async with httpx.AsyncClient(base_url=process.url, timeout=PROBE_TIMEOUT) as client:
            poisoned = [await post(client, "/hooks/qty", POISON) for _ in range(3)]
            for _ in range(5):  # the probe answers while the poisoned runs are taken and executed
                await healthy(client)
            picked = await post(client, "/hooks/pick", b'{"x": 1e999999999}')
            normal = await post(client, "/hooks/qty", b'{"id": "D-2", "qty": "12"}')

            for run_id in poisoned:
                run = await ended(client, run_id)
                assert run["status"] == "dead_lettered", run
                assert run["error"]["reason"] == "expression_limit", run["error"]
                assert run["error"]["message"].startswith(
                    "int: the number 1E+999999999 is too large to convert to an integer (more than 4300 digits)"
                ), run["error"]
            letters = (await client.get("/api/v1/dead-letters", headers=bearer(VIEWER))).json()
            reasons = [d["reason"] for d in letters["dead_letters"] if d["run_id"] in poisoned]
            assert len(reasons) == 3 and all(r.startswith("expression_limit") for r in reasons), reasons

            pick = await ended(client, picked)  # an index beyond any list is out of range: null
            assert pick["status"] == "succeeded" and pick["output"] == {"picked": None}, pick
            fine = await ended(client, normal)  # other events of the same flow go through
            assert fine["status"] == "succeeded" and fine["output"] == {"id": "D-2", "qty": 12}, fine
            await healthy(client)
    finally:
        process.proc.send_signal(signal.SIGTERM)
        try:
            process.proc.wait(15)
        except Exception:
            process.proc.kill()  # a node stuck in C code ignores SIGTERM (the defect); do not leak it
            process.proc.wait(5)
    assert process.proc.returncode == 0, process.logs()
    assert "Traceback" not in process.logs()
