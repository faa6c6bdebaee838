"""The bundled project's legacy CSV drop, served as `syncline demo` serves it: the sample bank
statement dropped into the `bank_drop` folder becomes one incoming payment per credit line in the
simulated ERP (exact amounts from decimal commas, the fee filtered), the file moves to done/, and the
same statement dropped again makes no second payment."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runtime.commands.demo import drop_statement
from runtime.demo.simulators import start_simulators
from tests.service.harness import ROOT, start_node, until


async def test_the_demo_statement_becomes_two_erp_payments_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sims = start_simulators()
    drop = tmp_path / "bank"
    monkeypatch.setenv("BANK_DROP_DIR", str(drop))
    for name, value in sims.env().items():
        monkeypatch.setenv(name, value)
    statement = drop_statement(ROOT)  # before the node starts: its first scan sees it
    node = await start_node(ROOT, f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert statement.parent == drop
        done = drop / "done" / statement.name

        async def runs_finished() -> list[dict[str, object]] | None:
            runs = await node.runs(flow="bank-statement-to-erp")
            return runs if len(runs) == 3 and all(r["status"] in ("succeeded", "filtered") for r in runs) else None

        runs = await until(runs_finished, timeout=30)
        assert sorted(str(r["status"]) for r in runs) == ["filtered", "succeeded", "succeeded"]
        await until(done.exists, timeout=10)
        async with httpx.AsyncClient() as client:
            erp = (await client.get(f"{sims.servers['erp'].url}/_state")).json()
        payments = sorted((r["reference"][-4:], r["amount"]) for r in erp["records"].values() if "booked_on" in r)
        assert payments == [("0001", 1250.10), ("0002", 0.30)]

        again = drop_statement(ROOT)  # the same content once more (a re-sent export)
        await until(lambda: (drop / "done" / (again.stem + ".1.csv")).exists(), timeout=15)
        assert len(await node.runs(flow="bank-statement-to-erp")) == 3
    finally:
        await node.stop()
        sims.stop()
