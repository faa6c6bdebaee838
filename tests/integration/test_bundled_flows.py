"""The bundled flows run end to end with `syncline run` (a real subprocess) against the simulated
CRM, billing and ERP systems (real HTTP servers on loopback), and a run killed mid-call resumes from
its journal without repeating completed calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.demo.simulators import Simulators, start_simulators

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sims() -> Iterator[Simulators]:
    systems = start_simulators()
    yield systems
    systems.stop()


def _env(sims: Simulators) -> dict[str, str]:
    return {**os.environ, **sims.env()}


def syncline(sims: Simulators, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", *args, "--store", f"sqlite:///{store}"],
        cwd=ROOT,
        env=_env(sims),
        capture_output=True,
        text=True,
        timeout=120,
    )


def state(sims: Simulators, system: str) -> dict:
    return httpx.get(f"{sims.servers[system].url}/_state").json()


def control(sims: Simulators, system: str, **settings: object) -> None:
    httpx.post(f"{sims.servers[system].url}/_control", json=settings).raise_for_status()


def test_order_flow_creates_one_sales_order_with_exact_total(sims: Simulators, tmp_path: Path) -> None:
    done = syncline(
        sims, tmp_path / "s.db", "webshop-order-to-erp", "--input", "tests/flows/data/order_a1.json", "--format", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["run"]["status"] == "succeeded"
    erp_id = report["output"]["data"]["erp_id"]
    order = state(sims, "erp")["records"][erp_id]
    assert order["order_ref"] == "A-1" and order["total"] == 60.27
    assert [s["step"] for s in report["steps"]][-2:] == ["submitted", "announce"]
    requests = state(sims, "erp")["requests"]
    assert all(r["correlation_id"] == report["run"]["correlation_id"] for r in requests[-2:])


def test_customer_sync_and_invoice_flows(sims: Simulators, tmp_path: Path) -> None:
    sync = syncline(sims, tmp_path / "s.db", "customer-sync-hourly")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert state(sims, "erp")["records"]["C-9"]["email"] == "ops@acme.example"
    invoice = httpx.get(f"{sims.servers['billing'].url}/invoices", headers={"X-Api-Key": "demo-billing-key"}).json()
    item = tmp_path / "invoice.json"
    item.write_text(json.dumps(invoice["data"][0]))
    posted = syncline(sims, tmp_path / "s.db", "billing-invoice-poll", "--input", str(item), "--format", "json")
    assert posted.returncode == 0, posted.stdout + posted.stderr
    ar_id = json.loads(posted.stdout)["output"]["id"]
    assert state(sims, "erp")["records"][ar_id]["total"] == 100.0


def test_dry_run_lists_writes_without_making_them(sims: Simulators, tmp_path: Path) -> None:
    before = len(state(sims, "erp")["records"])
    done = syncline(
        sims, tmp_path / "s.db", "webshop-order-to-erp", "--input", "tests/flows/data/order_a1.json", "--dry-run"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would call erp.create_sales_order" in done.stdout
    assert "ok         erp.find_customer" in done.stdout
    assert len(state(sims, "erp")["records"]) == before


def test_a_killed_run_resumes_without_repeating_completed_calls(sims: Simulators, tmp_path: Path) -> None:
    control(sims, "erp", delay=30.0, reset=False)
    payload = tmp_path / "order.json"
    order = json.loads((ROOT / "tests/flows/data/order_a1.json").read_text())
    order["id"] = "CRASH-1"
    payload.write_text(json.dumps(order))
    store = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "run",
            "webshop-order-to-erp",
            "--input",
            str(payload),
            "--store",
            f"sqlite:///{store}",
        ],
        cwd=ROOT,
        env=_env(sims),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        run_id = proc.stderr.readline().split()[1]
        deadline = time.time() + 30
        while time.time() < deadline:
            if any(
                r["path"] == "/sales-orders" and r["idempotency_key"] == "order-CRASH-1"
                for r in state(sims, "erp")["requests"]
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached the sales-order call")
        finds_before = sum(1 for r in state(sims, "erp")["requests"] if r["path"] == "/customers")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    control(sims, "erp", delay=0.0)
    resumed = syncline(sims, store, "--resume", run_id, "--format", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["run"]["status"] == "succeeded"
    erp = state(sims, "erp")
    finds_after = sum(1 for r in erp["requests"] if r["path"] == "/customers")
    assert finds_after == finds_before, "the completed find_customer call was repeated"
    orders = [r for r in erp["records"].values() if r.get("order_ref") == "CRASH-1"]
    assert len(orders) == 1, "the sales order was written twice"
    assert erp["effects"]["order-CRASH-1"] == 2  # delivered again after the crash, with the same key
    steps = [s["step"] for s in report["steps"]]
    assert steps.count("customer") == 1 and steps.count("post") == 1


def test_run_with_mocks_and_input_from_stdin(sims: Simulators, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks.yaml"
    mocks.write_text("erp.create_sales_order: {output: {id: MOCK-1}}\n")
    order = (ROOT / "tests/flows/data/order_a1.json").read_text().replace('"A-1"', '"STDIN-1"')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "run",
            "webshop-order-to-erp",
            "--input",
            "-",
            "--mock",
            str(mocks),
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env=_env(sims),
        input=order,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["output"]["data"]["erp_id"] == "MOCK-1"  # mocked
    assert report["calls"][0]["status"] == "ok"  # find_customer went to the real ERP simulator
    assert not any(r.get("order_ref") == "STDIN-1" for r in state(sims, "erp")["records"].values())


def test_run_reports_bad_input_and_unknown_flows_clearly(sims: Simulators, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json: [")
    done = syncline(sims, tmp_path / "s.db", "webshop-order-to-erp", "--input", str(bad))
    assert done.returncode == 2 and "bad.json" in done.stderr and "Traceback" not in done.stderr
    unknown = syncline(sims, tmp_path / "s.db", "no-such-flow")
    assert unknown.returncode == 2 and "webshop-order-to-erp" in unknown.stderr
