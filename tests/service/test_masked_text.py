"""A masked field stays masked inside free text too: a call whose error quotes the system's answer
(`"email": "..."` in a response body) puts that text in the run's error and its dead letter's reason,
and the admin API shows neither with the value (found by the console's canary test, issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import StartNode
from tests.service.harness import VIEWER, Sink, bearer, until, write_project

EMAIL = "ada.lovelace@example.org"

FLOW = """
trigger:
  webhook: {path: /hooks/customers}
steps:
  - id: push
    call: sink.post
    with: {path: customers, body: "{{ input }}"}
"""

POLICY = """
kind: Policy
name: pii
rules:
  - id: mask-email
    match: {system: sinkhole}
    mask: ["$.email"]
"""


async def test_a_masked_value_quoted_in_an_error_is_masked_in_the_api(
    tmp_path: Path, sink: Sink, nodes: StartNode, monkeypatch
) -> None:
    monkeypatch.setenv("SYNCLINE_VIEWER_TOKENS", VIEWER)
    sink.rule("/customers", status=422, body={"error": "rejected", "customer": {"email": EMAIL}})
    project = write_project(tmp_path / "p", sink.url, {"customers": FLOW})
    (project / "governance" / "pii.yaml").write_text(POLICY)
    node = await nodes(project)
    accepted = await node.client.post("/hooks/customers", json={"id": "C-7", "email": EMAIL})
    run_id = accepted.json()["run_id"]
    run = await node.wait_run(run_id)
    assert run["status"] in ("dead_lettered", "failed"), run["status"]
    stored = await node.service.store.get_run(run_id)
    assert stored is not None and EMAIL in json.dumps(stored.error), "the test needs an error quoting the value"

    headers = bearer(VIEWER)
    letters = await until(lambda: _letters(node, headers))
    shown = json.dumps(letters) + (await node.client.get(f"/api/v1/runs/{run_id}", headers=headers)).text
    assert EMAIL not in shown

    store = f"sqlite:///{project / 'state.db'}"  # the harness's store
    for command, fmt in ((["dlq", "list"], "json"), (["runs", "show", run_id], "text")):  # and the CLI
        cli = [sys.executable, "-m", "runtime.cli", *command, "--project", str(project), "--store", store]
        printed = subprocess.run([*cli, "--format", fmt], capture_output=True, text=True, timeout=60)
        assert printed.returncode == 0, printed.stderr
        assert EMAIL not in printed.stdout + printed.stderr, (command, fmt)
    assert '"email\\": \\"***\\"' in shown or '"email": "***"' in shown


async def _letters(node, headers):  # type: ignore[no-untyped-def]
    answer = await node.client.get("/api/v1/dead-letters", headers=headers)
    return answer.json()["dead_letters"] if answer.status_code == 200 and answer.json()["dead_letters"] else None
