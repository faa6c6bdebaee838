"""The README's quick-start curls work against `syncline demo`: a signed order is accepted and its run,
with its steps, can be read through the admin API."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runtime.demo.simulators import free_port

ROOT = Path(__file__).resolve().parents[2]


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Post a signed order and read its run:\n\n```sh\n(.*?)```", text, re.S)
    assert block, "README lost its quick-start curl block"
    return block.group(1)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
def test_readme_curls_against_the_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SYNCLINE_OPERATOR_TOKENS": "demo-operator-token"}
    demo = subprocess.Popen(
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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the demo did not become ready")
        lines = _readme_block().replace("8080", str(port)).splitlines()
        post = "\n".join(line for line in lines if not line.startswith("#") and "api/v1/runs" not in line)
        posted = subprocess.run(["bash", "-c", post], capture_output=True, text=True, timeout=30)
        assert posted.stdout.strip(), posted.stderr + demo_output(demo)
        assert posted.stdout.startswith("{"), repr(posted.stdout[:500])
        answer = json.loads(posted.stdout)
        run_id = answer["run_id"]
        assert answer["location"] == f"/api/v1/runs/{run_id}"
        read = next(line for line in lines if "api/v1/runs" in line and line.startswith("curl")).replace(
            "01M...", run_id
        )
        for _ in range(50):
            run = json.loads(subprocess.run(["bash", "-c", read], capture_output=True, text=True, timeout=30).stdout)
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert run["status"] == "succeeded", run
        assert [s["step"] for s in run["steps"]][:3] == ["customer", "check_customer", "order"]
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()


def demo_output(demo: subprocess.Popen[str]) -> str:
    demo.send_signal(signal.SIGTERM)
    out, _ = demo.communicate(timeout=20)
    return out[-3000:]
