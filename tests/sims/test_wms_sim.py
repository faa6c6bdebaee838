"""The WMS simulator, driven by Syncline's http connector: an idempotent fulfilment order (a retried
write with the same Idempotency-Key creates one order), stock checks with the WMS's error codes,
shipments paged by next_cursor, cancel refused once shipped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.http import HttpConfig, HttpConnector
from runtime.connector_api import CallRequest, ConnectorError
from runtime.demo.sims.wms import API_KEY, Wms
from tests.sims.preset_connection import call_all, http_connector


@pytest.fixture
def wms() -> Iterator[Wms]:
    with Wms() as sim:
        yield sim


OPS: dict[str, Any] = {
    "create": {"method": "POST", "path": "/v1/fulfillment-orders"},
    "cancel": {"method": "POST", "path": "/v1/fulfillment-orders/FO-1001/cancel"},
    "shipments": {
        "path": "/v1/shipments",
        "query": {"limit": 1},
        "pagination": {"type": "cursor", "cursor_param": "cursor", "next_cursor": "next_cursor", "items": "data"},
    },
}


def connector(sim: Wms) -> HttpConnector:
    config = HttpConfig.model_validate(
        {
            "base_url": sim.url,
            "auth": {"type": "api_key", "name": "X-Api-Key", "value": API_KEY},
            "errors": {"code": "$.error.code", "message": "$.error.message"},
        }
    )
    return http_connector("wms", config, OPS)


calls = call_all


ORDER = {
    "order_ref": "SO-1",
    "ship_to": {"name": "Acme", "city": "Berlin", "country": "DE"},
    "lines": [{"sku": "WIDGET-42", "quantity": 3}, {"sku": "GADGET-43", "quantity": 1}],
}


def test_idempotent_order_shipment_paging_and_cancel_after_ship(wms: Wms) -> None:
    wms.inject(503, path="/v1/fulfillment-orders$", method="POST")
    with pytest.raises(ConnectorError) as caught:
        calls(connector(wms), CallRequest("create", {"body": ORDER}, idempotency_key="order-SO-1"))
    assert caught.value.retriable
    first, again = calls(connector(wms), *[CallRequest("create", {"body": ORDER}, idempotency_key="order-SO-1")] * 2)
    assert first == again and first["id"] == "FO-1001" and len(wms.data["fulfillment_orders"]) == 1
    assert wms.data["inventory"]["WIDGET-42"]["allocated"] == 3

    shipped = httpx.post(f"{wms.url}/_sim/ship/FO-1001").json()
    (shipments,) = calls(connector(wms), CallRequest("shipments", {}))
    assert [s["id"] for s in shipments] == ["SH-0001", shipped["id"]]
    assert len(wms.seen("GET", "/v1/shipments")) == 2  # one per page

    with pytest.raises(ConnectorError) as caught:
        calls(connector(wms), CallRequest("cancel", {}))
    assert (caught.value.status, caught.value.code) == (409, "ALREADY_SHIPPED")


def test_stock_and_duplicate_errors(wms: Wms) -> None:
    short = {**ORDER, "order_ref": "SO-2", "lines": [{"sku": "GADGET-43", "quantity": 9}]}
    unknown = {**ORDER, "order_ref": "SO-3", "lines": [{"sku": "NOPE", "quantity": 1}]}
    for body, code in ((short, "INSUFFICIENT_STOCK"), (unknown, "SKU_UNKNOWN")):
        with pytest.raises(ConnectorError) as caught:
            calls(connector(wms), CallRequest("create", {"body": body}))
        assert (caught.value.status, caught.value.code) == (422, code)
    calls(connector(wms), CallRequest("create", {"body": ORDER}, idempotency_key="a"))
    with pytest.raises(ConnectorError) as caught:
        calls(connector(wms), CallRequest("create", {"body": ORDER}, idempotency_key="b"))
    assert caught.value.code == "DUPLICATE_ORDER_REF"
    assert httpx.get(f"{wms.url}/v1/inventory").status_code == 401
