"""A Shopify webhook, signed as Shopify documents it (X-Shopify-Hmac-Sha256: the base64 HMAC-SHA256 of the
raw body with the app's secret), starts a run of the served front-office example, which then reads and
writes Shopify, Stripe and Chargebee through their simulators; a repeated delivery is the same run; a
tampered body, another secret, a hex digest or no signature is refused with 401 and starts nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.demo.vendor_sims import VendorSimulators, start_vendor_simulators
from tests.service.conftest import StartNode
from tests.service.harness import ROOT

PROJECT = ROOT / "examples" / "front-office"
SECRET = "shpss_front_office_webhook_secret"


def shopify_signature(body: bytes, secret: str = SECRET) -> str:
    """Shopify's documented scheme: base64 of the HMAC-SHA256 digest of the raw request body."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def shopify_headers(signature: str | None, topic: str = "orders/paid") -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic,
               "X-Shopify-Shop-Domain": "acme-store.myshopify.com", "X-Shopify-API-Version": "2024-07",
               "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}  # fmt: skip
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    return headers


@pytest.fixture(scope="module")
def vendors() -> Iterator[VendorSimulators]:
    started = start_vendor_simulators(["shopify", "stripe", "chargebee", "salesforce_cpq"])
    yield started
    started.stop()


def _seed(vendors: VendorSimulators) -> dict[str, Any]:
    shop, payments = vendors.running["shopify"], vendors.running["stripe"]
    order: dict[str, Any] = shop._store("orders", {  # type: ignore[attr-defined]
        "email": "grace@example.com", "currency": "EUR", "financial_status": "paid", "total_price": "98.00",
        "customer": {"id": 6940095004827, "first_name": "Grace", "last_name": "Hopper"},
        "line_items": [{"sku": "pro", "quantity": 2, "price": "49.00"}]})  # fmt: skip
    buyer = payments._store("customers", {"email": "grace@example.com"})  # type: ignore[attr-defined]
    payments._store("payment_intents", {"customer": buyer["id"], "amount": 9800, "currency": "eur",  # type: ignore[attr-defined]
                                        "status": "succeeded"})  # fmt: skip
    return order


async def test_a_webhook_signed_as_shopify_signs_starts_a_run_on_the_served_example(
    tmp_path: Path, vendors: VendorSimulators, nodes: StartNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**vendors.env(), "SHOPIFY_WEBHOOK_SECRET": SECRET, "SALESFORCE_HOOK_KEY": "k"}.items():
        monkeypatch.setenv(name, value)
    order = _seed(vendors)
    chargebee = vendors.running["chargebee"]
    before = len(chargebee.data["subscription"])
    node = await nodes(PROJECT, f"sqlite:///{tmp_path / 'state.db'}")
    # Shopify sends the whole order; the bytes are signed as they are (spacing and key order included)
    body = json.dumps({**order, "id": order["id"], "note": None}, indent=1).encode()

    refused = {
        "tampered body": (body.replace(b'"98.00"', b'"9.80"'), shopify_signature(body)),
        "another secret": (body, shopify_signature(body, "shpss_someone_else")),
        "hex digest": (body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()),
        "no signature": (body, None),
    }
    for why, (sent, signature) in refused.items():
        answer = await node.client.post("/hooks/shopify/orders-paid", content=sent, headers=shopify_headers(signature))
        assert answer.status_code == 401, (why, answer.text)
    assert await node.runs() == []

    first = await node.client.post(
        "/hooks/shopify/orders-paid", content=body, headers=shopify_headers(shopify_signature(body))
    )
    again = await node.client.post(
        "/hooks/shopify/orders-paid", content=body, headers=shopify_headers(shopify_signature(body))
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["run_id"] == first.json()["run_id"]
    run = await node.wait_run(first.json()["run_id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["business_keys"] == {"order": str(order["id"])}
    assert "x-shopify-hmac-sha256" not in json.dumps(run).lower()  # the signature is not kept with the run
    assert len(chargebee.data["subscription"]) == before + 1
    subscription = chargebee.data["subscription"][run["output"]["result"]["subscription"]]
    assert [(i["item_price_id"], i["quantity"]) for i in subscription["subscription_items"]] == [("pro-EUR-monthly", 2)]
    notes = vendors.running["shopify"].data["orders"][str(order["id"])]["note_attributes"]
    assert {n["name"]: n["value"] for n in notes}["chargebee_subscription"] == subscription["id"]
