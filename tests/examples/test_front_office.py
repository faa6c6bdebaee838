"""The bundled example `examples/front-office`: `syncline validate` and `syncline test` pass on it, and
each flow runs against the simulators of its systems through the presets (their base URLs from the
environment): a paid Shopify order found in Stripe becomes a Chargebee subscription, once; a closed-won
Salesforce opportunity has its primary CPQ quote ordered through the CPQ API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main
from runtime.compiler import check_project
from runtime.demo.sims import chargebee, salesforce, shopify, stripe
from runtime.demo.sims.chargebee import ChargebeeSim
from runtime.demo.sims.salesforce_cpq import SalesforceCpqSim
from runtime.demo.sims.shopify import ShopifySim
from runtime.demo.sims.stripe import StripeSim
from runtime.engine.connectors import ConnectorPool
from runtime.engine.executor import Executor, RunResult
from runtime.engine.plan import build_plan
from runtime.secrets import SecretStore, env_resolver
from runtime.store.memory import MemoryStore

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "front-office"


def test_syncline_validate_and_test_pass_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    validated = main(["validate", str(PROJECT)])
    said = capsys.readouterr()
    assert validated == 0 and "0 errors, 0 warnings" in said.err, said.out + said.err
    tested = main(["test", str(PROJECT)])
    said = capsys.readouterr()
    assert tested == 0 and "flow tests: 13 passed, 0 failed" in said.out + said.err, said.out + said.err


class Sims:
    """One simulator per system; Salesforce and CPQ are one org (the CPQ simulator is a Salesforce org)."""

    def __init__(self) -> None:
        self.shopify = ShopifySim().start()
        self.stripe = StripeSim().start()
        self.chargebee = ChargebeeSim().start()
        self.org = SalesforceCpqSim().start()

    def env(self) -> dict[str, str]:
        return {
            "SHOPIFY_URL": self.shopify.url,
            "STRIPE_URL": self.stripe.url,
            "CHARGEBEE_URL": self.chargebee.url,
            "SALESFORCE_URL": self.org.url,
            "SALESFORCE_LOGIN_URL": self.org.url,
        }

    def secrets(self) -> dict[str, str]:
        return {
            "SHOPIFY_ACCESS_TOKEN": shopify.ACCESS_TOKEN,
            "STRIPE_API_KEY": stripe.API_KEY,
            "CHARGEBEE_API_KEY": chargebee.API_KEY,
            "SALESFORCE_CONSUMER_KEY": salesforce.CONSUMER_KEY,
            "SALESFORCE_PRIVATE_KEY": self.org.private_key,
        }

    def stop(self) -> None:
        for sim in (self.shopify, self.stripe, self.chargebee, self.org):
            sim.stop()


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    started = Sims()
    yield started
    started.stop()


def run(sims: Sims, flow: str, payload: Any) -> RunResult:
    async def go() -> RunResult:
        plan = build_plan(check_project(PROJECT))
        secrets = SecretStore(sims.secrets(), environ={})
        env = env_resolver(sims.env())
        store = MemoryStore()
        await store.open()
        executor = Executor(plan, store, secrets=secrets, env=env, connectors=ConnectorPool(plan, secrets, env))
        try:
            return await executor.run_flow(flow, payload)
        finally:
            await executor.aclose()
            await store.close()

    result = asyncio.run(go())
    assert result.status == "succeeded", result.error
    return result


def test_a_paid_shopify_order_found_in_stripe_becomes_one_chargebee_subscription(sims: Sims) -> None:
    order = sims.shopify._store("orders", {
        "email": "grace@example.com", "currency": "EUR", "financial_status": "paid", "total_price": "98.00",
        "customer": {"id": 6940095004827, "first_name": "Grace", "last_name": "Hopper"},
        "line_items": [{"sku": "pro", "quantity": 2, "price": "49.00"}]})  # fmt: skip
    buyer = sims.stripe._store("customers", {"email": "grace@example.com", "name": "Grace Hopper"})
    sims.stripe._store("payment_intents", {"customer": buyer["id"], "amount": 9800, "currency": "eur",
                                           "status": "succeeded"})  # fmt: skip
    before = len(sims.chargebee.data["subscription"])

    first = run(sims, "shopify-order-to-subscription", {"id": order["id"]}).output
    again = run(sims, "shopify-order-to-subscription", {"id": order["id"]}).output  # a repeated delivery

    (customer,) = [c for c in sims.chargebee.data["customer"].values() if c.get("email") == "grace@example.com"]
    assert customer["first_name"] == "Grace" and customer["preferred_currency_code"] == "EUR"
    assert len(sims.chargebee.data["subscription"]) == before + 1  # the second run got Chargebee's replay
    subscription = sims.chargebee.data["subscription"][first["result"]["subscription"]]
    assert subscription["customer_id"] == customer["id"]
    assert [(i["item_price_id"], i["quantity"]) for i in subscription["subscription_items"]] == [("pro-EUR-monthly", 2)]
    assert first["result"] == again["result"] == {
        "order": order["id"], "payment_intent": "pi_1", "chargebee_customer": customer["id"],
        "subscription": subscription["id"]}  # fmt: skip
    assert sims.stripe.data["customers"][buyer["id"]]["metadata"] == {
        "chargebee_customer": customer["id"], "chargebee_subscription": subscription["id"]}  # fmt: skip
    notes = sims.shopify.data["orders"][str(order["id"])]["note_attributes"]
    assert notes == [{"name": "stripe_payment_intent", "value": "pi_1"},
                     {"name": "chargebee_subscription", "value": subscription["id"]}]  # fmt: skip
    posts = sims.chargebee.seen("POST", "subscription_for_items$")
    assert [p.headers["chargebee-idempotency-key"] for p in posts] == [
        "chargebee-subscription-shopify-" + str(order["id"])
    ] * 2
    assert b"subscription_items%5Bitem_price_id%5D%5B0%5D=pro-EUR-monthly" in posts[0].body


def test_a_closed_won_opportunity_has_its_primary_cpq_quote_ordered(sims: Sims) -> None:
    org = sims.org
    opportunity = org._id("Opportunity", 1)
    (quote,) = org.data["SBQQ__Quote__c"].values()

    result = run(sims, "opportunity-won-to-order", {"opportunity_id": opportunity}).output["result"]

    (order,) = org.data["Order"].values()
    assert order["SBQQ__Quote__c"] == quote["Id"] and order["Status"] == "Draft"
    assert order["TotalAmount"] == Decimal("4770.00") and quote["SBQQ__Ordered__c"] is True
    assert sorted(i["Quantity"] for i in org.data["OrderItem"].values()) == [3, 10]
    assert result == {"quote": quote["Id"], "order": order["Id"], "net_total": Decimal("4770.00"), "currency": "EUR",
                      "lines": ["SL-PRO", "SL-CONN"]}  # fmt: skip
    assert org.data["Opportunity"][opportunity]["NextStep"] == f"Order {order['Id']} from quote {quote['Id']}"
    (reader,) = org.seen("GET", "/services/apexrest/SBQQ/ServiceRouter")
    assert "reader=SBQQ.QuoteAPI.QuoteReader" in reader.query
    assert len(org.seen("POST", "/services/oauth2/token")) == 2  # one JWT sign-in per connection, both verified
