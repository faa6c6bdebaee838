"""`syncline init DIR` makes a project that runs at once: every command `init` prints works as printed
in a clean environment (validate, test, and `run` of its flow on its sample input against the mock of
its target), and what it says `serve` needs is what `validate --env` reports."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TARGET_URL", "SIGNUP_HOOK_KEY", "SYNCLINE_SECRETS_DIR")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def syncline(words: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert words[0] == "syncline", words
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *words[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def blocks(output: str) -> dict[str, list[str]]:
    """init's output: each unindented line ending in ':' starts a block of indented commands."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("  ") and line.strip():
            current.append(line.strip())
        elif line.rstrip().endswith(":"):
            current = found.setdefault(line.strip(), [])
    return found


def test_the_commands_init_prints_work_as_printed(tmp_path: Path) -> None:
    made = syncline(["syncline", "init", "newproj"], tmp_path, clean_env())
    assert made.returncode == 0, made.stderr
    steps = blocks(made.stdout)
    first = next(commands for title, commands in steps.items() if title.startswith("next"))
    assert first[0] == "cd newproj", made.stdout
    project = tmp_path / "newproj"
    outputs = []
    for command in first[1:]:
        done = syncline(shlex.split(command), project, clean_env())
        assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
        outputs.append((command, done.stdout))
    ran = [(c, out) for c, out in outputs if c.startswith("syncline run ")]
    assert ran, made.stdout
    command, out = ran[0]
    assert "--input samples/" in command and "status succeeded" in out and '{"id":42}' in out, out
    assert "target.create_contact" in out and '"email":"ada@example.com"' in out, out


def test_what_init_says_serve_needs_is_what_validate_env_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TARGET_URL", "SIGNUP_HOOK_KEY", "SYNCLINE_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["init", str(tmp_path / "p")]) == 0
    made = capsys.readouterr().out
    serve_block = next(commands for title, commands in blocks(made).items() if "serve" in title)
    exports = dict(
        word.split("=", 1) for line in serve_block if line.startswith("export ") for word in shlex.split(line)[1:]
    )
    assert set(exports) == {"SIGNUP_HOOK_KEY"}, made
    assert any(line.startswith("syncline serve") for line in serve_block), made

    monkeypatch.chdir(tmp_path / "p")
    assert main(["validate", "--env"]) == 1
    missing = capsys.readouterr().out
    assert "SL052" in missing and "SIGNUP_HOOK_KEY" in missing and "flows/signup-to-contact.yaml:" in missing, missing
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    assert main(["validate", "--env"]) == 0, capsys.readouterr().out
