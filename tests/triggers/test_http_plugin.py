"""A trigger kind taking HTTP requests, from an outside package (built and installed into a fresh venv
by tests/plugin_package.py), served by `syncline serve` over a real socket — with no change to
Syncline: the kind's `http` intake (runtime/source_api.py) answers Slack-style URL-verification
challenges itself, without a run, checks its own signature scheme through `HttpContext.secret`, and
hands every other event to `HttpContext.accept`, which gives the core's answers (202 with Location, a
repeat 200 with the same run, 409 for its key with another body, the flow's `respond` in sync mode).
validate checks the kind's path against the other flows' (SL040) like a webhook's."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.demo.simulators import free_port
from tests.plugin_package import install_plugin, run_in

SECRET = "slack-signing-secret-4821"
TOKEN = "viewer-token-for-the-plugin-test"

PLUGIN = '''
"""syncline-slack: a `slack_events` trigger kind, Slack's Events API at a path of the node.

Slack signs every request (X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">). A
`url_verification` request is answered with its challenge and starts no run; every other event is
one run, its identity the event's `event_id`."""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.source_api import HttpContext, SecretUnavailable, TriggerType
from runtime.spec.common import Model

TOLERANCE = 300  # seconds a signed timestamp may be off


class SlackEventsSpec(Model):
    """Slack's Events API at a path; each event is one run."""

    path: str = Field(description="URL path Slack posts to.")
    signing_secret: str = Field(description="The app's signing secret (a template).")
    idempotency_key: str = Field("{{ input.event_id }}", description="Each event's identity.")
    sync_timeout: float | None = Field(None, description="Seconds to wait for the flow's answer.")


class SlackIntake:
    def __init__(self, spec: SlackEventsSpec) -> None:
        self.spec = spec
        self.method = "POST"
        self.path = spec.path

    async def handle(self, request: Request, ctx: HttpContext) -> Response:
        body = await request.body()
        stamp = request.headers.get("x-slack-request-timestamp", "")
        try:
            secret = ctx.secret(self.spec.signing_secret) or ""
        except SecretUnavailable:
            return ctx.problem(503, "not_configured", "the signing secret is not set", retry_after=30)
        if not stamp.isdigit() or abs(ctx.clock.time() - int(stamp)) > TOLERANCE:
            return ctx.reject(401, "stale_timestamp", "the request is too old")
        signed = b"v0:" + stamp.encode() + b":" + body
        expected = "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-slack-signature", "")):
            return ctx.reject(401, "bad_signature", "the Slack signature does not match")
        data = json.loads(body)
        if data.get("type") == "url_verification":
            ctx.count("challenges")
            return JSONResponse({"challenge": data["challenge"]})
        team = request.path_params.get("team", "")
        return await ctx.accept(
            data,
            headers={"x-slack-team": team},
            correlation_id=data.get("event_id"),
            digest=hashlib.sha256(body).hexdigest(),
            sync_timeout=self.spec.sync_timeout,
        )


TRIGGER = TriggerType(
    key="slack_events",
    model=SlackEventsSpec,
    description="Slack's Events API.",
    http=SlackIntake,
    idempotency_field="idempotency_key",
    explain=lambda spec: {"path": spec.path},
)
'''

PROJECT = {
    "syncline.yaml": "kind: Project\nname: slack-test\n",
    "flows/slack_events.yaml": """
        kind: Flow
        name: slack_events
        trigger:
          slack_events:
            path: /hooks/slack/{team}/events
            signing_secret: "{{ secret('SLACK_SIGNING_SECRET') }}"
        business_keys:
          team: "{{ headers['x-slack-team'] }}"
        steps:
          - id: note
            set: {text: "{{ input.event.text }}"}
    """,
    "flows/slack_commands.yaml": """
        kind: Flow
        name: slack_commands
        trigger:
          slack_events:
            path: /hooks/slack/commands
            signing_secret: "{{ secret('SLACK_SIGNING_SECRET') }}"
            sync_timeout: 10
        steps:
          - id: answer
            respond: {status: 200, body: {text: "you said {{ input.event.text }}"}}
    """,
}

COLLIDING = """
    kind: Flow
    name: orders
    trigger:
      webhook: {path: /hooks/slack/commands}
    steps:
      - id: note
        set: {ok: true}
"""


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(
        tmp_path_factory.mktemp("slack-plugin"),
        "syncline-slack",
        "syncline_slack",
        {"syncline.triggers": {"slack_events": "syncline_slack:TRIGGER"}},
        PLUGIN,
    )


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def _signed(payload: dict[str, object], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


def _event(event_id: str, text: str) -> dict[str, object]:
    return {"type": "event_callback", "event_id": event_id, "team_id": "T1", "event": {"type": "message", "text": text}}


@pytest.fixture
def served(plugin_python: Path, tmp_path: Path) -> Iterator[str]:
    """`syncline serve` of the project, run by the plugin venv's Python; yields its base URL."""
    root = _project(tmp_path / "p", PROJECT)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"SLACK_SIGNING_SECRET": SECRET, "SYNCLINE_VIEWER_TOKENS": TOKEN}
    command = ["-m", "runtime.cli", "serve", "--project", str(root), "--port", str(port)]
    store = ["--store", f"sqlite:///{tmp_path / 'runs.db'}"]
    proc = subprocess.Popen(
        [str(plugin_python), *command, *store],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs: list[str] = []
    reader = threading.Thread(target=lambda: logs.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited {proc.returncode}: {''.join(logs)}"
            assert time.monotonic() < deadline, "serve did not become ready: " + "".join(logs)
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(5)
    assert SECRET not in "".join(logs)


def _runs(base: str, flow: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{base}/api/v1/runs", params={"flow": flow}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    runs: list[dict[str, object]] = answer.json()["runs"]
    return runs


def test_a_plugin_http_kind_answers_its_handshake_and_turns_events_into_runs(served: str) -> None:
    hook = f"{served}/hooks/slack/T1/events"
    body, headers = _signed({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gm"})
    challenge = httpx.post(hook, content=body, headers=headers)
    assert challenge.status_code == 200
    assert challenge.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gm"}

    body, headers = _signed(_event("Ev01", "hello"))
    first = httpx.post(hook, content=body, headers=headers)
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    assert first.headers["location"] == f"/api/v1/runs/{run_id}"
    again = httpx.post(hook, content=body, headers=headers)  # Slack retries a delivery it was not sure of
    assert (again.status_code, again.json()["run_id"]) == (200, run_id)
    body, headers = _signed(_event("Ev01", "a different body under the same event id"))
    conflict = httpx.post(hook, content=body, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict", conflict.text

    body, headers = _signed(_event("Ev02", "forged"), secret="not-the-secret")
    forged = httpx.post(hook, content=body, headers=headers)
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature", forged.text
    assert httpx.get(hook).status_code == 405  # routing stays the core's
    assert httpx.post(f"{served}/hooks/slack/T1/other", content=body, headers=headers).status_code == 404

    deadline = time.monotonic() + 30
    while (runs := _runs(served, "slack_events")) and runs[0]["status"] != "succeeded":
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    assert [(r["id"], r["trigger"], r["status"]) for r in runs] == [(run_id, "slack_events", "succeeded")]
    assert runs[0]["correlation_id"] == "Ev01"
    assert runs[0]["business_keys"] == {"team": "T1"}  # the path's {team}, in a header the intake kept

    metrics = httpx.get(f"{served}/metrics").text
    assert 'syncline_webhook_rejections_total{flow="slack_events",reason="bad_signature"} 1.0' in metrics
    assert 'syncline_source_events_total{flow="slack_events",kind="slack_events",name="challenges"} 1.0' in metrics


def test_a_plugin_http_kind_in_sync_mode_answers_with_the_flows_respond(served: str) -> None:
    body, headers = _signed(_event("Ev10", "ping"))
    answer = httpx.post(f"{served}/hooks/slack/commands", content=body, headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"text": "you said ping"}


def test_validate_checks_a_plugin_kinds_path_against_the_other_flows(plugin_python: Path, tmp_path: Path) -> None:
    root = _project(tmp_path / "p", PROJECT)
    checked = run_in(plugin_python, "-m", "runtime.cli", "validate", str(root), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    _project(root, {"flows/orders.yaml": COLLIDING})
    clash = run_in(plugin_python, "-m", "runtime.cli", "validate", str(root), cwd=tmp_path)
    assert clash.returncode != 0
    assert "SL040" in clash.stdout + clash.stderr, clash.stdout + clash.stderr
    assert "POST /hooks/slack/commands is also the" in clash.stdout + clash.stderr, clash.stdout + clash.stderr
