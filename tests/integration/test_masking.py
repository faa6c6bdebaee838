"""Masked fields (the bundled `mask-pii` policy: email, phone, tax_id) never appear in logs, API
responses or dead letters: a test drives a dead-lettered and a held order carrying canary values
through `syncline serve` and searches everything people can see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runtime.commands.demo import signed_headers
from runtime.demo.simulators import DEMO_CREDENTIALS, free_port, start_simulators
from runtime.expr import dumps

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "mask-test-operator"
CANARIES = ("pii-canary@acme.example", "TAXCANARY77", "+49 000 CANARY")


def test_masked_fields_never_leave_syncline(tmp_path: Path) -> None:
    sims = start_simulators()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = f"sqlite:///{tmp_path / 'mask.db'}"
    env = {**os.environ, **sims.env(), "SYNCLINE_OPERATOR_TOKENS": TOKEN}
    server = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "--port", str(port), "--store", store, "--log-level", "debug"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    seen: list[str] = []
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        for _ in range(200):  # let the bundled invoice poll make its one ERP write first
            polled = httpx.get(f"{url}/api/v1/runs?flow=billing-invoice-poll", headers=auth).json()["runs"]
            if polled and all(r["status"] == "succeeded" for r in polled):
                break
            time.sleep(0.1)
        erp = sims.servers["erp"].url
        httpx.post(
            f"{erp}/_edit/C-77",
            json={"name": "Canary Ltd", "tax_id": CANARIES[1], "phone": CANARIES[2], "email": CANARIES[0]},
        ).raise_for_status()
        httpx.post(f"{erp}/_control", json={"fail_next": 1, "fail_status": 422}).raise_for_status()
        customer = {"id": "C-77", "tax_id": CANARIES[1], "email": CANARIES[0]}
        orders = [
            {
                "id": "MASK-1",
                "currency": "eur",
                "customer": customer,
                "lines": [{"sku": "A", "qty": 1, "unit_price": 5}],
            },
            {
                "id": "MASK-2",
                "currency": "eur",
                "customer": customer,
                "lines": [{"sku": "B", "qty": 1000, "unit_price": 500}],
            },  # 500,000: held for approval
        ]
        for order in orders:
            body = dumps(order).encode()
            answer = httpx.post(
                f"{url}/hooks/webshop/orders",
                content=body,
                headers=signed_headers(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"]),
            )
            assert answer.status_code == 202, answer.text
            seen.append(answer.text)
        deadline = time.time() + 20
        while time.time() < deadline:
            runs = httpx.get(f"{url}/api/v1/runs", headers=auth).json()["runs"]
            statuses = {r["business_keys"].get("order"): r["status"] for r in runs}
            if statuses.get("MASK-1") == "dead_lettered" and statuses.get("MASK-2") == "held":
                break
            time.sleep(0.1)
        assert statuses.get("MASK-1") == "dead_lettered" and statuses.get("MASK-2") == "held", statuses
        for path in (
            "/api/v1/runs",
            "/api/v1/dead-letters",
            "/api/v1/holds",
            "/api/v1/exceptions",
            *(f"/api/v1/runs/{r['id']}" for r in runs),
        ):
            response = httpx.get(f"{url}{path}", headers=auth)
            assert response.status_code == 200, (path, response.text)
            seen.append(response.text)
        masked_run = next(r["id"] for r in runs if r["business_keys"].get("order") == "MASK-1")
        detail = httpx.get(f"{url}/api/v1/runs/{masked_run}", headers=auth).json()
        assert detail["input"]["customer"]["email"] == "***"  # masked, not dropped
        dead = next(r["id"] for r in runs if r["status"] == "dead_lettered")
        for args in (["dlq", "show", dead], ["dlq", "list"], ["runs", "show", dead, "--format", "json"]):
            cli = subprocess.run(
                [sys.executable, "-m", "runtime.cli", *args, "--store", store],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert cli.returncode == 0, cli.stderr
            seen.append(cli.stdout + cli.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        logs, _ = server.communicate(timeout=30)
        sims.stop()
    seen.append(logs)
    everything = "\n".join(seen)
    for canary in CANARIES:
        assert canary not in everything, f"masked value {canary!r} leaked"
    assert "MASK-1" in everything  # the search really covered the runs
