"""The Stripe simulator speaks Stripe's protocol: the official `stripe` package, pointed at it, lists
with auto-paging, creates with nested parameters, replays an idempotent write, and raises its own
error classes for the simulator's error objects; Syncline's `preset: stripe` connection does the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.stripe import API_KEY, StripeSim
from tests.sims.preset_connection import preset_connector


@pytest.fixture(scope="module")
def sim() -> Iterator[StripeSim]:
    with StripeSim() as running:
        yield running


@pytest.fixture
def client(sim: StripeSim) -> stripe.StripeClient:
    sim.reset()
    return stripe.StripeClient(API_KEY, base_addresses={"api": sim.url}, max_network_retries=0)


def test_the_stripe_package_pages_creates_and_replays(sim: StripeSim, client: stripe.StripeClient) -> None:
    listed = [c.id for c in client.v1.customers.list({"limit": 2}).auto_paging_iter()]
    assert listed == ["cus_1", "cus_2", "cus_3", "cus_4", "cus_5"]
    assert [s.query for s in sim.seen("GET", "^/v1/customers$")][1:] == [
        "limit=2&starting_after=cus_2",
        "limit=2&starting_after=cus_4",
    ]
    params: Any = {"email": "new@example.com", "metadata": {"crm_id": "A-1"}}
    created = client.v1.customers.create(params, {"idempotency_key": "k-1"})
    again = client.v1.customers.create(params, {"idempotency_key": "k-1"})
    assert created.id == again.id and created.metadata["crm_id"] == "A-1"
    assert len(sim.data["customers"]) == 6 and sim.counters["idempotent_replays"] == 1
    assert sim.seen("POST")[0].headers["authorization"] == f"Bearer {API_KEY}"

    sub = client.v1.subscriptions.create({"customer": created.id, "items": [{"price": "price_1", "quantity": 2}]})
    assert [item.to_dict() for item in sub["items"]["data"]] == [{"price": "price_1", "quantity": 2}]


def test_the_stripe_package_raises_its_own_errors(client: stripe.StripeClient, sim: StripeSim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_404")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as param:
        client.v1.payment_intents.create({"currency": "eur"})  # type: ignore[typeddict-item]
    assert param.value.param == "amount"
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create({"amount": 100, "currency": "eur", "payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "a@x"}, {"idempotency_key": "k-2"})
        client.v1.customers.create({"email": "b@x"}, {"idempotency_key": "k-2"})
    sim.inject_rate_limit(path="^/v1/customers")
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.list()
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": sim.url}).v1.customers.list()


def test_the_preset_connection_pages_and_writes_nested_forms(sim: StripeSim) -> None:
    sim.reset()

    async def scenario() -> None:
        connector = preset_connector("stripe", {"base_url": sim.url, "api_key": API_KEY})
        try:
            listed = await connector.call(CallRequest("list_customers", {"query": {"limit": 2}}))
            assert [c["id"] for c in listed.output] == ["cus_1", "cus_2", "cus_3", "cus_4", "cus_5"]
            form = {"amount": 1999, "currency": "eur", "metadata": {"order_id": "A-1"}}
            made = await connector.call(CallRequest("create_payment_intent", {"form": form}, idempotency_key="o-1"))
            again = await connector.call(CallRequest("create_payment_intent", {"form": form}, idempotency_key="o-1"))
            assert made.output == again.output and made.output["amount"] == 1999
            assert made.output["metadata"] == {"order_id": "A-1"}
            with pytest.raises(ConnectorError) as declined:
                bad = {**form, "payment_method": "pm_card_chargeDeclined"}
                await connector.call(CallRequest("create_payment_intent", {"form": bad}))
            assert declined.value.status == 402 and not declined.value.retriable
            assert declined.value.code == "card_declined"
            sim.inject_rate_limit(path="^/v1/customers$")
            with pytest.raises(ConnectorError) as limited:
                await connector.call(CallRequest("list_customers", {}))
            assert limited.value.retriable and limited.value.status == 429
        finally:
            await connector.aclose()

    asyncio.run(scenario())
    (write, *_) = sim.seen("POST", "^/v1/payment_intents$")
    assert write.headers["stripe-version"] == "2024-06-20" and write.headers["idempotency-key"] == "o-1"
    assert "metadata%5Border_id%5D=A-1" in write.body.decode()
