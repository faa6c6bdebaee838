"""The bundled bidirectional customer sync with both systems' change webhooks live: an edit in the CRM
reaches the ERP, the ERP's change webhook comes back, and the write back to the CRM is suppressed as
an echo — the systems settle after one round, and the echo-suppression metric counts it. The same
holds starting from an edit in the ERP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.demo.simulators import Simulators, free_port, start_simulators

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bidi-test-token"


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[tuple[Simulators, str]]:
    sims = start_simulators()
    port = free_port()
    env = {**os.environ, **sims.env(), "SYNCLINE_VIEWER_TOKENS": TOKEN}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 'bidi.db'}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the service did not start")
        sims.connect_webhooks(url)
        yield sims, url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        sims.stop()


def _settle(sims: Simulators, url: str, seconds: float = 3.0) -> list[dict]:
    """Wait until no run is pending and no webhook was sent for a while; return the runs."""
    quiet_since = time.time()
    last = (-1, -1)
    while time.time() - quiet_since < seconds:
        sent = (sims.crm.state.webhooks_sent, sims.erp.state.webhooks_sent)
        runs = httpx.get(f"{url}/api/v1/runs?limit=100", headers={"Authorization": f"Bearer {TOKEN}"}).json()["runs"]
        busy = any(r["status"] in ("queued", "running", "retrying") for r in runs)
        if sent != last or busy:
            last = sent
            quiet_since = time.time()
        time.sleep(0.1)
    return runs


def _echo_metric(url: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("syncline_echo_suppressed_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_crm_edit_settles_after_one_round(live: tuple[Simulators, str]) -> None:
    sims, url = live
    crm = sims.servers["crm"].url
    httpx.post(f"{crm}/_edit/C-9", json={"email": "new@acme.example"}).raise_for_status()
    runs = _settle(sims, url)
    assert sims.erp.state.records["C-9"]["email"] == "new@acme.example"
    assert sims.crm.state.webhooks_sent == 1, "the CRM was written again: ping-pong"
    assert sims.erp.state.webhooks_sent == 1
    by_flow = {r["flow"]: r["status"] for r in runs if r["flow"].startswith("customer-")}
    assert by_flow == {"customer-crm-to-erp": "succeeded", "customer-erp-to-crm": "succeeded"}
    assert _echo_metric(url) == 1.0
    crm_writes = [r for r in sims.crm.state.requests if r["path"].startswith("/accounts/")]
    assert crm_writes == []


def test_an_erp_edit_settles_after_one_round(live: tuple[Simulators, str]) -> None:
    sims, url = live
    erp = sims.servers["erp"].url
    httpx.post(f"{erp}/_edit/C-9", json={"credit_status": "blocked"}).raise_for_status()
    _settle(sims, url)
    assert sims.crm.state.records["C-9"]["credit_status"] == "blocked"
    assert sims.erp.state.webhooks_sent == 1 and sims.crm.state.webhooks_sent == 1
    upserts = [r for r in sims.erp.state.requests if r["path"] == "/customers/C-9"]
    assert upserts == [], "the ERP was written back: ping-pong"
    assert _echo_metric(url) == 1.0
