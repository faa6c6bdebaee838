"""The Chargebee simulator speaks Chargebee's API v2: the `chargebee` package, pointed at it, lists with
next_offset, creates a customer with a nested address and a subscription with index-last item arrays,
and raises its own errors; the `preset: chargebee` connection pages, writes the same bodies and
replays an idempotent write."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import chargebee
import pytest

from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.chargebee import API_KEY, SITE, ChargebeeSim
from tests.sims.preset_connection import preset_connector


@pytest.fixture(scope="module")
def sim() -> Iterator[ChargebeeSim]:
    with ChargebeeSim() as running:
        yield running


@pytest.fixture
def cb(sim: ChargebeeSim, monkeypatch: pytest.MonkeyPatch) -> chargebee.Chargebee:
    sim.reset()
    monkeypatch.setattr(chargebee.Chargebee, "verify_ca_certs", False)  # plain http on loopback
    client = chargebee.Chargebee(api_key=API_KEY, site=SITE, protocol="http")
    client.env.api_endpoint = f"{sim.url}/api/v2"
    client.env.retry_config.enabled = False
    return client


def test_the_chargebee_package_lists_creates_and_raises(cb: chargebee.Chargebee, sim: ChargebeeSim) -> None:
    first = cb.Customer.list({"limit": 2})
    ids = [entry.customer.id for entry in first.list]
    offset = first.next_offset
    while offset:
        page = cb.Customer.list({"limit": 2, "offset": offset})
        ids += [entry.customer.id for entry in page.list]
        offset = page.next_offset
    assert ids == [f"cust_{n}" for n in range(1, 6)]

    made = cb.Customer.create({"first_name": "Ada", "email": "ada@example.com",
                               "billing_address": {"first_name": "Ada", "country": "DE"}})  # fmt: skip
    assert made.customer.billing_address.country == "DE"
    sub = cb.Subscription.create_with_items(
        made.customer.id, {"subscription_items": [{"item_price_id": "pro-EUR-monthly", "quantity": 2}]}
    )
    assert sub.subscription.subscription_items[0].quantity == 2
    sent = sim.seen("POST", "subscription_for_items$")[0].body.decode()
    assert "subscription_items%5Bitem_price_id%5D%5B0%5D=pro-EUR-monthly" in sent

    with pytest.raises(chargebee.InvalidRequestError) as bad:
        cb.Customer.create({"email": "not-an-email"})
    assert bad.value.api_error_code == "invalid_request" and bad.value.param == "email"
    with pytest.raises(chargebee.InvalidRequestError) as missing:
        cb.Customer.retrieve("cust_404")
    assert missing.value.http_status_code == 404
    sim.inject_rate_limit(path="^/api/v2/customers$")
    with pytest.raises(chargebee.APIError) as limited:
        cb.Customer.list()
    assert limited.value.http_status_code == 429 and limited.value.api_error_code == "api_request_limit_exceeded"
    bad_key = chargebee.Chargebee(api_key="wrong", site=SITE, protocol="http")
    bad_key.env.api_endpoint = f"{sim.url}/api/v2"
    with pytest.raises(chargebee.APIError) as denied:
        bad_key.Customer.list()
    assert denied.value.http_status_code == 401


def test_the_preset_connection_pages_writes_and_replays(sim: ChargebeeSim) -> None:
    sim.reset()

    async def scenario() -> None:
        connector = preset_connector("chargebee", {"site": SITE, "base_url": sim.url, "api_key": API_KEY})
        try:
            customers = await connector.call(CallRequest("list_customers", {"query": {"limit": 2}}))
            assert [c["id"] for c in customers.output] == [f"cust_{n}" for n in range(1, 6)]
            form = {"subscription_items": [{"item_price_id": "pro-EUR-monthly", "quantity": 3}]}
            spec = {"path": "/customers/cust_2/subscription_for_items", "form": form}
            made = await connector.call(CallRequest("create_subscription", spec, idempotency_key="sub-cust_2"))
            again = await connector.call(CallRequest("create_subscription", spec, idempotency_key="sub-cust_2"))
            assert made.output == again.output and again.meta["headers"]["chargebee-idempotency-replayed"] == "true"
            assert made.output["subscription"]["subscription_items"][0]["quantity"] == 3
            with pytest.raises(ConnectorError) as missing:
                await connector.call(CallRequest("get_customer", {"path": "/customers/nobody"}))
            assert missing.value.status == 404 and missing.value.code == "resource_not_found"
            sim.inject_rate_limit(path="^/api/v2/invoices$")
            with pytest.raises(ConnectorError) as limited:
                await connector.call(CallRequest("list_invoices", {}))
            assert limited.value.retriable and limited.value.code == "api_request_limit_exceeded"
        finally:
            await connector.aclose()

    asyncio.run(scenario())
    assert len(sim.data["subscription"]) == 1
