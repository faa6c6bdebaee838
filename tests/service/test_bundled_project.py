"""The bundled project served as `syncline demo` serves it: a signed order posted to the webshop
webhook becomes one ERP sales order through the simulated ERP; an unknown customer ends as a
business exception; the admin API shows the run with its steps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.demo.simulators import DEMO_CREDENTIALS, Simulators, start_simulators
from tests.service.conftest import StartNode
from tests.service.harness import ROOT, sign


@pytest.fixture(scope="module")
def sims() -> Iterator[Simulators]:
    systems = start_simulators()
    yield systems
    systems.stop()


async def test_signed_order_becomes_one_sales_order(
    tmp_path: Path, sims: Simulators, nodes: StartNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sims.env().items():
        monkeypatch.setenv(name, value)
    node = await nodes(ROOT, f"sqlite:///{tmp_path / 'state.db'}")
    order = json.loads((ROOT / "tests/flows/data/order_a1.json").read_text())
    order["id"] = "SVC-1"
    body = json.dumps(order).encode()
    headers = sign(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"])
    answers = [await node.client.post("/hooks/webshop/orders", content=body, headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 200]
    run = await node.wait_run(answers[0].json()["run_id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["business_keys"] == {"order": "SVC-1", "customer": "C-9"}
    assert [s["step"] for s in run["steps"]][-2:] == ["submitted", "announce"]
    async with httpx.AsyncClient() as client:
        erp = (await client.get(f"{sims.servers['erp'].url}/_state")).json()
    created = [r for r in erp["records"].values() if r.get("order_ref") == "SVC-1"]
    assert len(created) == 1 and created[0]["total"] == 60.27

    unknown = {**order, "id": "SVC-2", "customer": {"id": "C-404", "tax_id": "XX000"}}
    body = json.dumps(unknown).encode()
    answer = await node.client.post(
        "/hooks/webshop/orders", content=body, headers=sign(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"])
    )
    failed = await node.wait_run(answer.json()["run_id"])
    assert failed["status"] == "exception" and failed["error"]["code"] == "CUSTOMER_NOT_IN_ERP"
