"""`syncline dlq` and `syncline replay` on a real store: a rejected order is dead-lettered, the dry run
lists what a replay would do, and the replay completes without repeating the steps already done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def cli(sims: Simulators, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=ROOT,
        env={**os.environ, **sims.env()},
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def test_dead_letter_dry_run_and_replay(sims: Simulators, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    erp = sims.servers["erp"].url
    httpx.post(f"{erp}/_control", json={"fail_next": 1, "fail_status": 422}).raise_for_status()
    order = json.loads((ROOT / "tests/flows/data/order_a1.json").read_text())
    order["id"] = "DLQ-1"
    first = cli(
        sims,
        "run",
        "webshop-order-to-erp",
        "--input",
        "-",
        "--store",
        store,
        "--format",
        "json",
        stdin=json.dumps(order),
    )
    assert first.returncode == 1, first.stdout + first.stderr
    run_id = json.loads(first.stdout)["run"]["id"]
    assert json.loads(first.stdout)["run"]["status"] == "dead_lettered"

    listing = cli(sims, "dlq", "list", "--store", store)
    assert run_id in listing.stdout and "HTTP 422 from erp.create_sales_order" in listing.stdout

    shown = cli(sims, "dlq", "show", run_id, "--store", store)
    assert "dead letter:" in shown.stdout and "DLQ-1" in shown.stdout

    finds = sum(1 for r in httpx.get(f"{erp}/_state").json()["requests"] if r["path"] == "/customers")
    dry = cli(sims, "replay", run_id, "--dry-run", "--store", store, "--format", "json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    report = json.loads(dry.stdout)
    assert "customer" in report["skipped"]
    assert [c["operation"] for c in report["side_effects"]] == ["erp.create_sales_order"]
    assert not any(r.get("order_ref") == "DLQ-1" for r in httpx.get(f"{erp}/_state").json()["records"].values())

    done = cli(sims, "replay", run_id, "--store", store, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    replayed = json.loads(done.stdout)
    assert replayed["run"]["status"] == "succeeded"
    state = httpx.get(f"{erp}/_state").json()
    assert sum(1 for r in state["requests"] if r["path"] == "/customers") == finds  # not repeated
    assert sum(1 for r in state["records"].values() if r.get("order_ref") == "DLQ-1") == 1

    after = cli(sims, "dlq", "list", "--store", store)
    assert run_id not in after.stdout
    everything = cli(sims, "dlq", "list", "--all", "--store", store)
    assert f"replayed as {replayed['run']['id']}" in everything.stdout

    runs = cli(sims, "runs", "list", "--business-key", "order:DLQ-1", "--store", store, "--format", "json")
    assert {r["status"] for r in json.loads(runs.stdout)} == {"dead_lettered", "succeeded"}


def test_replay_refuses_unknown_runs_and_steps(sims: Simulators, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    missing = cli(sims, "replay", "NOPE", "--store", store)
    assert missing.returncode == 1 and "no run 'NOPE'" in missing.stderr
    ok = cli(sims, "run", "customer-sync-hourly", "--store", store, "--format", "json")
    run_id = json.loads(ok.stdout)["run"]["id"]
    bad_step = cli(sims, "replay", run_id, "--from-step", "nonexistent", "--store", store)
    assert bad_step.returncode == 1 and "has no step 'nonexistent'" in bad_step.stderr


def test_runs_list_refuses_an_unknown_status(sims: Simulators, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    listed = cli(sims, "runs", "list", "--status", "succeeded,finished", "--store", store)
    assert listed.returncode == 2, listed.stderr
    assert "unknown status finished; one of: queued," in listed.stderr and "Traceback" not in listed.stderr
    assert cli(sims, "runs", "list", "--status", "succeeded,dead_lettered", "--store", store).returncode == 0
