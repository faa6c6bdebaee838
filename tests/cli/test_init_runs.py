"""`syncline init DIR` makes a project that runs at once: every command `init` prints works as printed
in a clean environment (validate, test, and `run` of its flow on its sample input against the mock of
its target), and what it says `serve` needs is what `validate --env` reports."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

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


def test_what_init_says_serve_needs_is_what_validate_env_reports(tmp_path: Path) -> None:
    made = syncline(["syncline", "init", str(tmp_path / "p")], tmp_path, clean_env())
    serve_block = next(commands for title, commands in blocks(made.stdout).items() if "serve" in title)
    exports = dict(
        word.split("=", 1) for line in serve_block if line.startswith("export ") for word in shlex.split(line)[1:]
    )
    assert set(exports) == {"SIGNUP_HOOK_KEY"}, made.stdout
    assert any(line.startswith("syncline serve") for line in serve_block), made.stdout

    missing = syncline(["syncline", "validate", "--env"], tmp_path / "p", clean_env())
    assert missing.returncode == 1 and "SL052" in missing.stdout and "SIGNUP_HOOK_KEY" in missing.stdout
    assert "flows/signup-to-contact.yaml:" in missing.stdout, missing.stdout
    ready = syncline(["syncline", "validate", "--env"], tmp_path / "p", clean_env(**exports))
    assert ready.returncode == 0, ready.stdout + ready.stderr
