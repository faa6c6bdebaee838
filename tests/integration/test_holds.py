"""Large orders are held by the bundled `big-orders-need-approval` policy: one is approved through the
API and completes, another is rejected and ends as rejected; both decisions are in the run's audit
trail, and a token of another team cannot decide."""

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
VIEWER, OPERATOR, FINANCE, SALES = "hold-viewer", "hold-operator", "hold-finance", "hold-sales"


def _wait(url: str, auth: dict[str, str], run_id: str, wanted: set[str]) -> dict:
    for _ in range(200):
        run = httpx.get(f"{url}/api/v1/runs/{run_id}", headers=auth).json()
        if run["status"] in wanted:
            return run
        time.sleep(0.1)
    return run


def test_held_runs_are_approved_or_rejected_and_audited(tmp_path: Path) -> None:
    sims = start_simulators()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **sims.env(),
        "SYNCLINE_VIEWER_TOKENS": VIEWER,
        "SYNCLINE_OPERATOR_TOKENS": OPERATOR,
        "SYNCLINE_TEAM_TOKENS": f"finance-ops:{FINANCE},sales:{SALES}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 'holds.db'}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ids = []
        for number, (customer, tax_id) in ((1, ("C-9", "DE123")), (2, ("C-1", "DE1"))):  # two ordering keys
            order = {
                "id": f"BIG-{number}",
                "currency": "eur",
                "customer": {"id": customer, "tax_id": tax_id},
                "lines": [{"sku": "GOLD", "qty": 100, "unit_price": 1500}],
            }
            body = dumps(order).encode()
            answer = httpx.post(
                f"{url}/hooks/webshop/orders",
                content=body,
                headers=signed_headers(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"]),
            )
            ids.append(answer.json()["run_id"])
        for run_id in ids:
            assert _wait(url, viewer, run_id, {"held"})["status"] == "held"
        holds = httpx.get(f"{url}/api/v1/holds", headers=viewer).json()["holds"]
        assert {h["run_id"] for h in holds} == set(ids)
        assert holds[0]["hold"]["rule"] == "big-orders-need-approval"
        assert not any(r.get("order_ref", "").startswith("BIG-") for r in sims.erp.state.records.values())

        assert httpx.post(f"{url}/api/v1/holds/{ids[0]}/approve", headers=viewer).status_code == 403
        wrong_team = httpx.post(f"{url}/api/v1/holds/{ids[0]}/approve", headers={"Authorization": f"Bearer {SALES}"})
        assert wrong_team.status_code == 403 and "finance-ops" in wrong_team.text
        approved = httpx.post(
            f"{url}/api/v1/holds/{ids[0]}/approve",
            json={"comment": "checked with sales"},
            headers={"Authorization": f"Bearer {FINANCE}"},
        )
        assert approved.status_code == 200, approved.text
        rejected = httpx.post(
            f"{url}/api/v1/holds/{ids[1]}/reject",
            json={"comment": "duplicate order"},
            headers={"Authorization": f"Bearer {OPERATOR}"},
        )
        assert rejected.status_code == 200, rejected.text

        done = _wait(url, viewer, ids[0], {"succeeded", "failed", "dead_lettered", "exception"})
        assert done["status"] == "succeeded", done
        assert [a["decision"] for a in done["audit"]] == ["approved"]
        assert done["audit"][0]["team"] == "finance-ops" and done["audit"][0]["comment"] == "checked with sales"
        assert sum(1 for r in sims.erp.state.records.values() if r.get("order_ref") == "BIG-1") == 1

        ended = httpx.get(f"{url}/api/v1/runs/{ids[1]}", headers=viewer).json()
        assert ended["status"] == "rejected" and ended["audit"][0]["decision"] == "rejected"
        assert not any(r.get("order_ref") == "BIG-2" for r in sims.erp.state.records.values())
        again = httpx.post(f"{url}/api/v1/holds/{ids[1]}/approve", headers={"Authorization": f"Bearer {OPERATOR}"})
        assert again.status_code == 409
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        sims.stop()
