"""The README's front-office demo: `syncline demo --project examples/front-office --systems …` serves the
example on the vendor simulators it started; an opportunity-won callout orders the primary CPQ quote in
the Salesforce CPQ simulator."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from runtime.demo.simulators import free_port

ROOT = Path(__file__).resolve().parents[2]


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def _front_office_block() -> tuple[list[str], str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"To serve the front-office example on them.*?\n\n```sh\n(.*?)```", text, re.S)
    assert block, "README lost its front-office demo block"
    start, curl = block.group(1).replace("\\\n", " ").strip().splitlines()
    return start.split(), curl


def test_the_readme_serves_the_front_office_example_on_its_simulators(tmp_path: Path) -> None:
    start, curl = _front_office_block()
    port = free_port()
    env_names = [word for word in start if "=" in word and word.split("=")[0].isupper()]
    command = [word for word in start if word not in env_names]
    assert command[0] == ".venv/bin/syncline" and command[1] == "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", *command[1:], "--port", str(port),
         "--store", f"sqlite:///{tmp_path / 'demo.db'}"],
        cwd=ROOT, env={**os.environ, **dict(w.split("=", 1) for w in env_names),
                       "SYNCLINE_OPERATOR_TOKENS": "demo-operator-token"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, seen), daemon=True).start()
    output: list[str] = []
    try:
        org = _wait_for_line(seen, output, r"\s+salesforce_cpq\s+(http://127\.0\.0\.1:\d+)\s")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        posted = subprocess.run(["bash", "-c", curl.replace("8080", str(port))], capture_output=True, text=True)
        assert posted.stdout.startswith("{"), posted.stdout + posted.stderr + "".join(output)
        run_id = json.loads(posted.stdout)["run_id"]
        admin = {"Authorization": "Bearer demo-operator-token"}
        while time.monotonic() < deadline:
            run = httpx.get(f"{base}/api/v1/runs/{run_id}", headers=admin, timeout=5).json()
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert run["status"] == "succeeded", run
        state = httpx.get(f"{org}/_sim/state", timeout=5).json()["data"]
        (order,) = state["Order"].values()
        assert order["Status"] == "Draft" and run["output"]["result"]["order"] == order["Id"]
        assert state["SBQQ__Quote__c"][order["SBQQ__Quote__c"]]["SBQQ__Ordered__c"] is True
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()


def _wait_for_line(seen: queue.Queue[str], output: list[str], pattern: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        output.append(line)
        if found := re.match(pattern, line):
            return found[1]
    raise AssertionError("the demo did not print " + pattern + ":\n" + "".join(output))
