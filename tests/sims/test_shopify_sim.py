"""The Shopify simulator speaks Shopify's REST Admin API: the `ShopifyAPI` package, pointed at it, pages
through products by the Link header, creates and updates records and sees Shopify's 422 errors; the
`preset: shopify` connection pages, writes, and is paced by the call-limit header it reports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import shopify
from pyactiveresource.connection import ClientError, UnauthorizedAccess

from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.shopify import ACCESS_TOKEN, BUCKET_SIZE, ShopifySim
from tests.connectors.http.http_target import FakeClock
from tests.sims.preset_connection import preset_connector


@pytest.fixture
def sim() -> Iterator[ShopifySim]:
    with ShopifySim(clock=FakeClock()) as running:
        yield running


def _activate(sim: ShopifySim, token: str = ACCESS_TOKEN) -> None:
    shopify.ShopifyResource.site = f"{sim.url}/admin/api/2024-07"
    shopify.ShopifyResource.version = "2024-07"
    shopify.ShopifyResource.headers["X-Shopify-Access-Token"] = token


def test_the_shopify_package_pages_creates_and_updates(sim: ShopifySim) -> None:
    _activate(sim)
    try:
        page = shopify.Product.find(limit=2)
        titles = [p.title for p in page]
        while page.has_next_page():
            page = page.next_page()
            titles += [p.title for p in page]
        assert titles == [f"Widget {n}" for n in range(1, 6)]
        assert "page_info=" in sim.seen("GET", "products.json$")[1].query

        product = shopify.Product({"title": "Gadget", "status": "draft"})
        assert product.save() and product.id
        product.status = "active"
        assert product.save()
        assert sim.data["products"][str(product.id)]["status"] == "active"
        blank = shopify.Product({"status": "draft"})
        assert not blank.save()
        assert "can't be blank" in blank.errors.full_messages()[0]  # the 422 body, read by the package

        order = shopify.Order.find(207119551)
        assert order.total_price == "29.00"
        _activate(sim, "shpat_wrong")
        with pytest.raises(UnauthorizedAccess):
            shopify.Product.find(limit=1)
    finally:
        shopify.ShopifyResource.clear_session()


def test_a_full_bucket_is_429_with_retry_after(sim: ShopifySim) -> None:
    _activate(sim)
    try:
        for _ in range(BUCKET_SIZE):
            shopify.Product.find(limit=1)
        with pytest.raises(ClientError) as caught:
            shopify.Product.find(limit=1)
        assert caught.value.response.code == 429
    finally:
        shopify.ShopifyResource.clear_session()


def test_the_preset_connection_pages_writes_and_reads_the_bucket(sim: ShopifySim) -> None:
    async def scenario() -> None:
        connector = preset_connector("shopify", {"shop": "acme", "base_url": sim.url, "access_token": ACCESS_TOKEN})
        try:
            products = await connector.call(CallRequest("list_products", {"query": {"limit": 2}}))
            assert [p["title"] for p in products.output] == [f"Widget {n}" for n in range(1, 6)]
            assert products.meta["pages"] == 3
            made = await connector.call(CallRequest("create_product", {"body": {"product": {"title": "Gadget"}}}))
            assert made.status == 201 and made.output["product"]["title"] == "Gadget"
            with pytest.raises(ConnectorError) as invalid:
                await connector.call(CallRequest("create_product", {"body": {"product": {"vendor": "x"}}}))
            assert invalid.value.status == 422 and not invalid.value.retriable
            assert invalid.value.body == {"errors": {"title": ["can't be blank"]}}
            order = {"path": "/orders/207119551/fulfillments.json", "body": {"fulfillment": {"tracking_number": "1Z"}}}
            shipped = await connector.call(CallRequest("create_fulfillment", order))
            assert shipped.output["fulfillment"]["order_id"] == 207119551
            sim.level = BUCKET_SIZE  # someone else used the shop's bucket up
            with pytest.raises(ConnectorError) as limited:
                await connector.call(CallRequest("get_order", {"path": "/orders/207119551.json"}))
            assert limited.value.status == 429 and limited.value.retriable and limited.value.retry_after == 2.0
            assert connector._gauge is not None and connector._gauge.capacity == BUCKET_SIZE
        finally:
            await connector.aclose()

    asyncio.run(scenario())
    assert all(s.headers["x-shopify-access-token"] == ACCESS_TOKEN for s in sim.seen())
    assert "idempotency-key" not in sim.seen("POST")[0].headers
