"""The bundled example `examples/back-office`: its mapping tests and FlowTests pass, and each flow runs
against the simulators of its systems through the presets — a NetSuite sales order created with
signatures oauthlib verifies, an SAP sales order created through the CSRF handshake, Dynamics 365,
Zuora, Avalara and the WMS read from and written to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runtime.commands.test import flowtest_failures, mapping_test_failures
from runtime.compiler import check_project
from runtime.demo.sims.avalara import ACCOUNT_ID, LICENSE_KEY, Avalara
from runtime.demo.sims.dynamics365 import CLIENT_ID as D365_ID
from runtime.demo.sims.dynamics365 import CLIENT_SECRET as D365_SECRET
from runtime.demo.sims.dynamics365 import Dynamics365
from runtime.demo.sims.netsuite import CONSUMER_KEY, CONSUMER_SECRET, TOKEN_ID, TOKEN_SECRET, NetSuite
from runtime.demo.sims.sap_s4hana import PASSWORD, USER, SapS4Hana
from runtime.demo.sims.wms import API_KEY, Wms
from runtime.demo.sims.zuora import CLIENT_ID as ZUORA_ID
from runtime.demo.sims.zuora import CLIENT_SECRET as ZUORA_SECRET
from runtime.demo.sims.zuora import Zuora
from runtime.engine.connectors import ConnectorPool
from runtime.engine.executor import Executor, RunResult
from runtime.engine.plan import build_plan
from runtime.secrets import SecretStore, env_resolver
from runtime.store.memory import MemoryStore

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "back-office"
SECRETS = {
    "SAP_USER": USER, "SAP_PASSWORD": PASSWORD,
    "NETSUITE_CONSUMER_KEY": CONSUMER_KEY, "NETSUITE_CONSUMER_SECRET": CONSUMER_SECRET,
    "NETSUITE_TOKEN_ID": TOKEN_ID, "NETSUITE_TOKEN_SECRET": TOKEN_SECRET,
    "D365_CLIENT_ID": D365_ID, "D365_CLIENT_SECRET": D365_SECRET,
    "ZUORA_CLIENT_ID": ZUORA_ID, "ZUORA_CLIENT_SECRET": ZUORA_SECRET,
    "AVALARA_ACCOUNT_ID": ACCOUNT_ID, "AVALARA_LICENSE_KEY": LICENSE_KEY,
    "WMS_API_KEY": API_KEY,
}  # fmt: skip


def test_the_examples_mapping_tests_and_flowtests_pass() -> None:
    result = check_project(PROJECT)
    assert not result.errors, [d.text() for d in result.errors]
    failures, mappings = mapping_test_failures(result)
    assert failures == [] and mappings >= 20, [d.text() for d in failures]
    flow_failures, flows = asyncio.run(flowtest_failures(result))
    assert flow_failures == [] and flows >= 12, [d.text() for d in flow_failures]


class Sims:
    def __init__(self) -> None:
        self.sap = SapS4Hana(page_size=2).start()
        self.netsuite = NetSuite().start()
        self.d365 = Dynamics365().start()
        self.zuora = Zuora().start()
        self.avalara = Avalara().start()
        self.wms = Wms().start()

    def env(self) -> dict[str, str]:
        return {
            "SAP_URL": self.sap.url,
            "NETSUITE_URL": self.netsuite.url,
            "D365_URL": self.d365.url,
            "D365_LOGIN_URL": self.d365.url,
            "ZUORA_URL": self.zuora.url,
            "AVALARA_URL": self.avalara.url,
            "WMS_URL": self.wms.url,
        }

    def stop(self) -> None:
        for sim in (self.sap, self.netsuite, self.d365, self.zuora, self.avalara, self.wms):
            sim.stop()


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    started = Sims()
    yield started
    started.stop()


def sample(name: str) -> Any:
    return json.loads((PROJECT / "samples" / name).read_text())


def run(sims: Sims, flow: str, payload: Any, expect: str = "succeeded") -> RunResult:
    async def go() -> RunResult:
        plan = build_plan(check_project(PROJECT))
        secrets = SecretStore(SECRETS, environ={})
        env = env_resolver(sims.env())
        store = MemoryStore()
        await store.open()
        executor = Executor(plan, store, secrets=secrets, env=env, connectors=ConnectorPool(plan, secrets, env))
        try:
            result = await executor.run_flow(flow, payload)
            letters = await store.list_dead_letters(flow=flow)
            result.dead_letters = letters  # type: ignore[attr-defined]
            return result
        finally:
            await executor.aclose()
            await store.close()

    result = asyncio.run(go())
    assert result.status == expect, result.error
    return result


def test_preset_netsuite_creates_a_sales_order_with_signatures_oauthlib_verifies(sims: Sims) -> None:
    before = sims.netsuite.verified
    result = run(sims, "order-to-netsuite", sample("order_jpy.json"))
    (order,) = [o for o in sims.netsuite.data["salesOrder"].values() if o["externalId"] == "SO-WEB-1001"]
    assert order["entity_id"] == "107" and order["currency"] == "5" and order["total"] == 15290
    assert [(line["item_id"], line["amount"]) for line in order["lines"]] == [("42", 4000), ("43", 9900)]
    writes = sims.netsuite.seen("PUT", "/salesOrder/eid:SO-WEB-1001")
    assert len(writes) == 1 and writes[0].headers["authorization"].startswith('OAuth realm="1234567_SB1"')
    assert sims.netsuite.verified - before == 3  # get customer, upsert, read back: each verified by oauthlib
    # the line discount is folded into NetSuite's line amount: its subtotal is net (13900 yen)
    assert result.output["number"] == order["tranId"] and result.output["base"] == {
        "currency": "USD", "exchange_rate": Decimal("0.0067"), "subtotal": Decimal("93.13"), "tax": Decimal("9.31"),
        "total": Decimal("102.44")}  # fmt: skip


def test_preset_sap_creates_a_sales_order_through_the_csrf_handshake(sims: Sims) -> None:
    result = run(sims, "order-to-sap", sample("order_jpy.json"))
    fetches = [s for s in sims.sap.seen("GET") if s.headers.get("x-csrf-token", "").lower() == "fetch"]
    (post,) = sims.sap.seen("POST", "A_SalesOrder$")
    assert len(fetches) == 1 and fetches[0].path.endswith("/API_SALES_ORDER_SRV/")
    assert post.headers["x-csrf-token"] in sims.sap.sessions.values()
    assert (
        "SAP_SESSIONID_S4H_100=" in post.headers["cookie"]
        and "sap-usercontext=sap-client=100" in post.headers["cookie"]
    )
    assert post.headers["repeatability-request-id"] == "sap-order-WEB-1001"
    number = result.output["number"]
    assert sims.sap.data["A_SalesOrder"][number]["PurchaseOrderByCustomer"] == "WEB-1001"
    assert result.output["totals"] == {"subtotal": 13900, "tax": 1390, "total": 15290}
    assert [line["sku"] for line in result.output["lines"]] == ["WIDGET-42", "GADGET-43"]


def test_dynamics_zuora_avalara_and_wms_flows_read_and_write(sims: Sims) -> None:
    d365 = run(sims, "order-to-dynamics", sample("order_jpy.json")).output
    assert d365["total"] == 15290  # Dataverse's own sum: 4500 − 500 + 400 + 9900 + 990
    account = next(a for a in sims.d365.data["accounts"].values() if a.get("accountnumber") == "CUST-ACME")
    assert account["name"] == "Acme Corp" and sims.d365.token_requests == 1

    zuora = run(sims, "subscription-to-zuora", sample("subscription_jpy.json")).output
    assert zuora == {"subscription_number": "A-S00000001", "mrr": 12000, "account_subscriptions": 1}
    assert sims.zuora.seen("POST", "/v1/subscriptions")[0].headers["idempotency-key"] == "zuora-subscription-SUB-7"

    invoice = run(sims, "invoice-tax-to-avalara", sample("invoice_usd.json")).output
    assert invoice["totals"]["discount"] == 10 and invoice["totals"]["subtotal"] == 129
    assert [t["jurisdiction"] for t in invoice["taxes"]] == ["WASHINGTON", "KING", "SEATTLE"]
    assert sims.avalara.data["transactions"]["DEFAULT/INV-1001"]["status"] == "Committed"

    wms = run(sims, "order-to-wms", sample("order_jpy.json")).output
    assert wms["status"] == "received" and sims.wms.data["inventory"]["WIDGET-42"]["allocated"] == 3


def test_zuoras_http_200_failure_reaches_the_dead_letter_with_zuoras_code(sims: Sims) -> None:
    """Zuora answers an unknown rate plan with HTTP 200 and `success: false`: the preset's `errors:` rule
    fails the step (not retried) and the dead letter carries Zuora's code and message."""
    payload = {
        **sample("subscription_jpy.json"),
        "id": "SUB-BAD",
        "items": [{"plan_id": "8ad0-unknown", "quantity": 1}],
    }
    result = run(sims, "subscription-to-zuora", payload, expect="dead_lettered")
    (letter,) = result.dead_letters  # type: ignore[attr-defined]
    assert letter.error["code"] == "53000040" and letter.error["class"] == "fatal" and letter.error["status"] == 200
    assert "Invalid product rate plan id 8ad0-unknown" in letter.error["message"]
    attempts = [s for s in sims.zuora.seen("POST", "/v1/subscriptions$") if b"SUB-BAD" in s.body]
    assert len(attempts) == 1  # not retried
