"""`make demo` / `syncline demo` with its port taken: one clear message naming the port and how to pick
another, before any simulator starts, and no traceback; the Makefile passes `PORT` through; `serve`
logs the address it listens on."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_demo_on_a_busy_port_says_which_port_and_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runtime.cli",
                "demo",
                "--port",
                str(port),
                "--no-traffic",
                "--store",
                f"sqlite:///{tmp_path / 'demo.db'}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"127.0.0.1:{port}" in output and "in use" in output, output
    assert "make demo PORT=" in output and "--port" in output, output
    assert "Traceback" not in output, output
    assert "simulated systems" not in output, "the simulators started before the port was checked:\n" + output


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("assignment", "port"), [((), "8080"), (("PORT=8091",), "8091")])
def test_make_demo_passes_the_port_through(assignment: tuple[str, ...], port: str) -> None:
    # -n prints the commands without running them; -W marks the install stamp fresh so only demo's own line matters
    done = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "-o", ".venv/.installed", "demo", *assignment],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    demo_lines = [line for line in done.stdout.splitlines() if "syncline demo" in line]
    assert demo_lines and all(f"--port {port}" in line for line in demo_lines), done.stdout


def test_serve_logs_the_address_it_listens_on(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "syncline.yaml").write_text("kind: Project\nname: quiet\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--project",
            str(project),
            "--port",
            "0",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, ""):
            lines.append(line)
            if "listening on" in line:
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert found.wait(30), "".join(lines)
        entry = json.loads(next(line for line in lines if "listening on" in line))
        address = entry["message"].split("listening on ", 1)[1].split()[0]
        assert address.startswith("http://127.0.0.1:") and not address.endswith(":0"), entry
        assert httpx.get(f"{address}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        reader.join(5)
