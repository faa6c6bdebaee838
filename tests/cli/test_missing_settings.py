"""Missing secrets and settings that connections and webhooks need: `syncline validate --env` reports
them with SL052 at the file and line of the reference; `syncline serve` refuses to start without them
(one clear message, exit 1) unless `--allow-missing-secrets`, and then `/readyz` answers 503 naming
them until they are there."""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from runtime.cli import main
from runtime.demo.simulators import free_port
from tests.compiler.test_required_settings import project

ROOT = Path(__file__).resolve().parents[2]
ALL = {
    "CRM_URL": "http://127.0.0.1:9",
    "SHARED": "s",
    "CRM_TOKEN": "crm-token-1234",
    "CRM_OP_KEY": "op-key-1234",
    "ACCOUNTS_HOOK_SECRET": "hook-secret-1234",
    "ACCOUNTS_HOOK_OLD": "hook-old-1234",
}


def _env(**settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ALL and k != "SYNCLINE_SECRETS_DIR"}
    return {**base, **settings}


def syncline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def validate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, **environ: str
) -> tuple[int, str, str]:
    """`syncline validate ...` in this process, with exactly `environ` of the project's names set."""
    for name in (*ALL, "SYNCLINE_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_env_reports_what_is_missing_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(project(tmp_path / "p"))
    partial = {k: v for k, v in ALL.items() if k not in ("CRM_TOKEN", "ACCOUNTS_HOOK_SECRET")}
    code, out, err = validate(monkeypatch, capsys, root, **partial)
    assert code == 0, out + err  # without --env the environment is not checked
    code, out, err = validate(monkeypatch, capsys, "--env", root, **partial)
    assert code == 1, out + err
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    crm = "crm.yaml:6:31: error SL052 secret 'CRM_TOKEN' is not set: needed by connection crm (config.auth.token)"
    assert any(crm in line and "$SYNCLINE_SECRETS_DIR/CRM_TOKEN" in line for line in lines), out
    assert any("accounts.yaml:8:15: error SL052 secret 'ACCOUNTS_HOOK_SECRET'" in line for line in lines), out
    assert "crm-token" not in out + err

    code, out, err = validate(monkeypatch, capsys, "--env", "--format", "json", root, **partial)
    report = json.loads(out)
    assert code == 1 and {d["code"] for d in report["diagnostics"]} == {"SL052"}
    assert validate(monkeypatch, capsys, "--env", root, **ALL)[0] == 0


def test_validate_env_reads_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(project(tmp_path / "p"))
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "CRM_TOKEN").write_text("from-a-file-1234\n")
    rest = {k: v for k, v in ALL.items() if k != "CRM_TOKEN"}
    code, out, err = validate(monkeypatch, capsys, "--env", root, **rest, SYNCLINE_SECRETS_DIR=str(folder))
    assert code == 0, out + err
    code, out, err = validate(monkeypatch, capsys, "--env", root, **rest)
    assert code == 1 and "CRM_TOKEN" in out, out + err


def test_serve_refuses_to_start_without_them(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    partial = {k: v for k, v in ALL.items() if k != "ACCOUNTS_HOOK_SECRET"}
    done = syncline(
        "serve", "--project", str(root), "--port", "0", "--store", f"sqlite:///{tmp_path / 's.db'}", env=_env(**partial)
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "accounts.yaml:8:" in output and "SL052" in output and "ACCOUNTS_HOOK_SECRET" in output, output
    assert "--allow-missing-secrets" in output and "Traceback" not in output, output
    assert not (tmp_path / "s.db").exists(), "the store was opened before the check"


def test_allowed_to_start_it_is_not_ready_until_they_are_there(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    folder = tmp_path / "secrets"
    folder.mkdir()
    partial = {k: v for k, v in ALL.items() if k != "ACCOUNTS_HOOK_SECRET"}
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--project",
            str(root),
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--allow-missing-secrets",
        ],
        cwd=ROOT,
        env=_env(**partial, SYNCLINE_SECRETS_DIR=str(folder)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs: list[str] = []
    reader = threading.Thread(target=lambda: logs.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        answer = _wait_for_answer(url, proc, logs)
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["ready"] is False and body["store"] is True
        assert body["missing"] == [
            "secret ACCOUNTS_HOOK_SECRET (needed by the webhook of flow accounts (trigger.webhook.auth.secret))"
        ]
        assert any("ACCOUNTS_HOOK_SECRET" in line and "warning" in line for line in logs), "".join(logs)

        body = b'{"id": "A-1"}'
        signed = {
            "Content-Type": "application/json",
            "X-Signature": hmac.new(b"mounted-later-1234", body, "sha256").hexdigest(),
        }
        hook = f"http://127.0.0.1:{port}/hooks/accounts"
        early = httpx.post(hook, content=body, headers=signed, timeout=10)
        assert early.status_code == 503 and early.headers.get("retry-after"), early.text
        assert "not set" in early.text and "Traceback" not in early.text, early.text

        (folder / "ACCOUNTS_HOOK_SECRET").write_text("mounted-later-1234")
        assert httpx.get(url, timeout=5).status_code == 200
        assert httpx.post(hook, content=body, headers=signed, timeout=10).status_code == 202
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(5)
    assert "mounted-later" not in "".join(logs)


def _wait_for_answer(url: str, proc: subprocess.Popen[str], logs: list[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited {proc.returncode}: {''.join(logs)}"
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer: " + "".join(logs))
