"""A canary secret used in ten ways in one flow (issue 8.3): concatenated, base64-encoded, upper-cased,
sliced, split and joined, serialised to JSON, regex-replaced, inside a mapping's output object, in a
business exception's message, and sent as a Basic Authorization header to a real local HTTP server.
The server must receive the real header; the canary and every form derived from it must appear in no
output: the admin API (viewer and operator: runs with their journal, dead letters, a replay dry run),
the JSON logs and stdout of `syncline serve`, the store's files, and the CLI (`syncline run`,
`syncline runs show`, `syncline dlq show`)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import StartNode
from tests.service.harness import (
    OPERATOR,
    ROOT,
    VIEWER,
    Sink,
    bearer,
    serve_process,
    until,
    wait_ready,
    write_project,
)

CANARY = "zqkv-wyxj-hgtr-pqmz"
BASIC = base64.b64encode(f"user:{CANARY}".encode()).decode()
ENV = {"CANARY_PW": CANARY, "SYNCLINE_VIEWER_TOKENS": VIEWER, "SYNCLINE_OPERATOR_TOKENS": OPERATOR}

VAULT = """\
kind: Connection
name: vault
type: http
system: vault
config:
  base_url: "{url}"
  timeout: 10s
operations:
  login:
    method: POST
    path: "/{{{{ params.path }}}}"
    headers: {{Authorization: "{{{{ params.auth }}}}"}}
    body: "{{{{ params.body }}}}"
    entity: session
    effect: create
"""

MAPPING = """\
kind: Mapping
name: canary_credentials
fields:
  order: "{{ input.id }}"
  credentials: {user: svc, token: "{{ vars.shout ~ '/' ~ vars.head }}", tail: "{{ vars.tail }}"}
"""

FLOW = """
trigger:
  webhook: {path: /hooks/canary}
steps:
  - id: derive
    set:
      joined: "{{ 'user:' ~ secret('CANARY_PW') }}"
      basic: "{{ ('user:' ~ secret('CANARY_PW')) | b64encode }}"
      shout: "{{ secret('CANARY_PW') | upper }}"
      head: "{{ secret('CANARY_PW')[0:9] }}"
      tail: "{{ secret('CANARY_PW')[-9:] }}"
      spaced: "{{ secret('CANARY_PW') | list | join(' ') }}"
      doc: "{{ {'user': 'svc', 'pw': secret('CANARY_PW')} | tojson }}"
      scrubbed: "{{ secret('CANARY_PW') | regex_replace('[aeiou]', '#') }}"
  - id: shape
    map: canary_credentials
  - id: login
    call: vault.login
    with:
      path: "{{ input.path }}"
      auth: "Basic {{ vars.basic }}"
      body: {credentials: "{{ steps.shape.output.credentials }}", doc: "{{ vars.doc }}", who: "{{ vars.joined }}"}
  - id: refuse
    fail:
      code: CANARY
      message: "rejected {{ vars.shout }} / {{ vars.spaced }} / {{ vars.scrubbed }} / {{ steps.shape.output | tojson }}"
"""


def forms() -> list[str]:
    """The canary and every form the flow derives from it (any slice of 4+ characters contains one
    of the 4-character slices searched)."""
    found = {CANARY, CANARY.upper(), BASIC, " ".join(CANARY), re.sub("[aeiou]", "#", CANARY)}
    found |= {CANARY[i : i + 4] for i in range(len(CANARY) - 3)}
    upper = CANARY.upper()
    found |= {upper[i : i + 8] for i in range(len(upper) - 7)}
    found |= {BASIC[i : i + 12] for i in range(len(BASIC) - 11)}
    return sorted(found)


def leaks(text: str) -> list[str]:
    return [form for form in forms() if form in text]


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"$ syncline {' '.join(args)} (exit {done.returncode})\n{done.stdout}\n{done.stderr}"


async def wait_ended(client: httpx.AsyncClient, run_id: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while True:
        run = (await client.get(f"/api/v1/runs/{run_id}", headers=bearer(VIEWER))).json()
        if run.get("status") in ("exception", "dead_lettered", "succeeded", "failed"):
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)


async def test_a_canary_secret_used_ten_ways_appears_in_no_output(tmp_path: Path, sink: Sink) -> None:
    sink.rule("/login", handler=lambda hit: (200, {"session": "s-1", "saw": hit.headers.get("authorization")}))
    sink.rule("/leaky", handler=lambda hit: (500, {"error": f"rejected {hit.headers.get('authorization')}"}))
    project = write_project(tmp_path / "p", sink.url, {"canary": FLOW})
    (project / "systems" / "vault.yaml").write_text(VAULT.format(url=sink.url))
    (project / "mappings").mkdir(exist_ok=True)
    (project / "mappings" / "canary_credentials.yaml").write_text(MAPPING)
    store = f"sqlite:///{tmp_path / 'state.db'}"
    outputs: list[str] = []

    process = serve_process(project, store, env=ENV, args=("--log-level", "debug"))
    try:
        await wait_ready(process)
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as client:
            refused = await client.post("/hooks/canary", json={"id": "C-1", "path": "login"})
            dead = await client.post("/hooks/canary", json={"id": "C-2", "path": "leaky"})
            assert refused.status_code == 202 and dead.status_code == 202, (refused.text, dead.text)
            refused_id, dead_id = refused.json()["run_id"], dead.json()["run_id"]
            ended = await wait_ended(client, refused_id)
            assert ended["status"] == "exception", ended
            assert (await wait_ended(client, dead_id))["status"] == "dead_lettered"
            for token in (VIEWER, OPERATOR):
                for path in (
                    f"/api/v1/runs/{refused_id}",
                    f"/api/v1/runs/{dead_id}",
                    "/api/v1/runs",
                    "/api/v1/dead-letters",
                ):
                    answer = await client.get(path, headers=bearer(token))
                    assert answer.status_code == 200, answer.text
                    outputs.append(answer.text)
            dry = await client.post(f"/api/v1/runs/{dead_id}/replay", json={"dry_run": True}, headers=bearer(OPERATOR))
            outputs.append(dry.text)
            steps = {s["step"]: s for s in ended["steps"]}
            assert steps["login"]["status"] == "succeeded" and ended["error"]["code"] == "CANARY"
    finally:
        process.proc.send_signal(signal.SIGTERM)
        code = process.proc.wait(15)
    assert code == 0, process.logs()
    outputs += [process.logs(), "".join(process.stdout)]

    input_file = tmp_path / "order.json"
    input_file.write_text(json.dumps({"id": "C-3", "path": "login"}))
    common = ("--project", str(project), "--store", store)
    outputs.append(cli("run", "canary", "--input", str(input_file), *common))
    outputs.append(cli("run", "canary", "--input", str(input_file), "--new", "--format", "json", *common))
    for fmt in ("text", "json"):
        outputs.append(cli("runs", "show", refused_id, "--format", fmt, *common))
        outputs.append(cli("dlq", "show", dead_id, "--format", fmt, *common))
    assert "CANARY" in outputs[-4] and "dead" in outputs[-1].lower(), outputs[-4:]
    outputs += [f.read_bytes().decode("utf-8", "replace") for f in tmp_path.glob("state.db*")]

    # the connector call got the real derived value (four times: two runs served, two CLI runs)
    logins = sink.on("/login") + sink.on("/leaky")
    assert len(logins) == 4
    assert all(hit.headers["authorization"] == f"Basic {BASIC}" for hit in logins)
    assert sink.on("/login")[0].body["who"] == f"user:{CANARY}"
    everything = "\n".join(outputs)
    assert "***" in everything
    found = leaks(everything)
    assert found == [], [(form, everything[everything.index(form) - 200 :][:400]) for form in found]


FEED = """\
kind: Connection
name: feed
type: http
system: feedsource
config:
  base_url: "{url}"
  timeout: 5s
operations:
  items: {{method: GET, path: "/items/{{{{ params.key }}}}", entity: thing, effect: read}}
"""

POLL = """
trigger:
  poll:
    call: feed.items
    every: 100ms
    backoff: 100ms
    with: {key: "{{ secret('CANARY_PW') | upper }}"}
    items: "$.data[*]"
    key: "{{ item.id }}"
steps:
  - id: push
    call: sink.post
    with: {path: got, body: "{{ input }}"}
"""


async def test_a_poll_sends_the_derived_value_and_masks_the_error_echoing_it(
    tmp_path: Path, sink: Sink, nodes: StartNode, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.rule(f"/items/{CANARY.upper()}", status=500, body={"error": "no"})
    caplog.set_level(logging.WARNING, logger="syncline.poll")
    monkeypatch.setenv("CANARY_PW", CANARY)
    project = write_project(tmp_path / "p", sink.url, {"feed": POLL})
    (project / "systems" / "feed.yaml").write_text(FEED.format(url=sink.url))
    await nodes(project)
    await until(lambda: "poll feed failed" in caplog.text)
    assert len(sink.on(f"/items/{CANARY.upper()}")) >= 1  # the source got the real value
    assert "*** returned HTTP 500" in caplog.text and leaks(caplog.text) == [], caplog.text
