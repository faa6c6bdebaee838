"""A generic warehouse management system (WMS) simulator: the REST shape most 3PL and warehouse APIs share
(ShipBob, ShipHero, Logiwa, … differ in names, not in kind), documented in docs/systems/wms.md.

- Auth: an API key in `X-Api-Key`; a missing or wrong one is 401.
- `POST /v1/fulfillment-orders` (`order_ref`, `ship_to`, `lines[{sku, quantity}]`, `service_level`) answers
  201 with the order (`status: received`); `Idempotency-Key` makes a repeat answer the first response
  (`Idempotent-Replayed: true`); a second order with the same `order_ref` and another key is 409
  `DUPLICATE_ORDER_REF`; an unknown SKU or a short stock is 422 (`SKU_UNKNOWN`, `INSUFFICIENT_STOCK`).
- `GET /v1/fulfillment-orders/{id}`, `POST /v1/fulfillment-orders/{id}/cancel` (409 once shipped).
- `GET /v1/shipments?updated_since=&limit=&cursor=` lists shipments oldest first with `next_cursor`
  (null on the last page); `GET /v1/inventory?sku=` gives stock per SKU.
- Errors: `{"error": {"code", "message", "field"}}`; the rate limit is 429 with `Retry-After` and
  `X-RateLimit-Remaining: 0`.
- `POST /_sim/ship/{id}` plays the warehouse: it ships a received order (a shipment with a carrier and
  tracking number appears).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

API_KEY = "demo-wms-api-key"


def wms_error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field
    return json_response(body, status)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Wms(VendorSim):
    name = "wms"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.by_key: dict[str, Any] = {}
        super().__init__()

    def seed(self) -> None:
        self.data = {
            "inventory": {
                "WIDGET-42": {"sku": "WIDGET-42", "on_hand": 120, "allocated": 0},
                "GADGET-43": {"sku": "GADGET-43", "on_hand": 8, "allocated": 0},
                "TG11": {"sku": "TG11", "on_hand": 40, "allocated": 0},
            },
            "fulfillment_orders": {},
            "shipments": {
                "SH-0001": {
                    "id": "SH-0001",
                    "fulfillment_order_id": "FO-0999",
                    "order_ref": "SO-OLD-1",
                    "carrier": "UPS",
                    "service_level": "ground",
                    "tracking_number": "1Z999AA10123456784",
                    "shipped_at": "2026-11-30T16:00:00.000000Z",
                    "updated_at": "2026-11-30T16:00:00.000000Z",
                    "lines": [{"sku": "WIDGET-42", "quantity": 2}],
                },
            },
        }
        self.by_key = {}

    def rate_limited(self, fault: Fault) -> Response:
        response = wms_error(429, "RATE_LIMITED", "Too many requests")
        response.headers.update({"Retry-After": "1", "X-RateLimit-Remaining": "0", **fault.headers})
        return response

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/fulfillment-orders", self.create_order, methods=["POST"]),
            Route("/v1/fulfillment-orders/{id}", self.get_order, methods=["GET"]),
            Route("/v1/fulfillment-orders/{id}/cancel", self.cancel_order, methods=["POST"]),
            Route("/v1/shipments", self.shipments, methods=["GET"]),
            Route("/v1/inventory", self.inventory, methods=["GET"]),
            Route("/_sim/ship/{id}", self.ship, methods=["POST"]),
        ]

    def _denied(self, request: Request) -> Response | None:
        if secrets.compare_digest(request.headers.get("x-api-key", ""), self.api_key):
            return None
        return wms_error(401, "UNAUTHORIZED", "Missing or invalid API key")

    async def create_order(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        key = request.headers.get("idempotency-key")
        if key and key in self.by_key:
            return json_response(self.by_key[key], 201, {"Idempotent-Replayed": "true"})
        raw = await request.body()
        try:
            body = loads(raw) if raw else None
        except ValueError:
            return wms_error(400, "INVALID_JSON", "The body is not valid JSON")
        if not isinstance(body, dict):
            return wms_error(400, "INVALID_JSON", "The body must be a JSON object")
        if not body.get("order_ref"):
            return wms_error(422, "REQUIRED", "order_ref is required", "order_ref")
        if any(o["order_ref"] == body["order_ref"] for o in self.data["fulfillment_orders"].values()):
            return wms_error(
                409, "DUPLICATE_ORDER_REF", f"An order with order_ref {body['order_ref']} exists", "order_ref"
            )
        ship_to = body.get("ship_to")
        if not isinstance(ship_to, dict) or not ship_to.get("country"):
            return wms_error(422, "REQUIRED", "ship_to.country is required", "ship_to.country")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            return wms_error(422, "REQUIRED", "at least one line is required", "lines")
        for index, line in enumerate(lines):
            stock = self.data["inventory"].get(str(line.get("sku")))
            if stock is None:
                return wms_error(422, "SKU_UNKNOWN", f"Unknown SKU {line.get('sku')}", f"lines[{index}].sku")
            quantity = int(line.get("quantity", 0))
            if quantity <= 0:
                return wms_error(422, "INVALID_QUANTITY", "quantity must be positive", f"lines[{index}].quantity")
            if stock["on_hand"] - stock["allocated"] < quantity:
                return wms_error(422, "INSUFFICIENT_STOCK", f"Not enough {stock['sku']} available", f"lines[{index}]")
        for line in lines:
            self.data["inventory"][line["sku"]]["allocated"] += int(line["quantity"])
        number = f"FO-{self.next_number('order', start=1001):04d}"
        order = {
            "id": number,
            "order_ref": body["order_ref"],
            "status": "received",
            "ship_to": ship_to,
            "service_level": body.get("service_level", "ground"),
            "created_at": _now(),
            "lines": [{"sku": ln["sku"], "quantity": int(ln["quantity"])} for ln in lines],
        }
        self.data["fulfillment_orders"][number] = order
        if key:
            self.by_key[key] = order
        return json_response(order, 201)

    async def get_order(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        order = self.data["fulfillment_orders"].get(request.path_params["id"])
        if order is None:
            return wms_error(404, "NOT_FOUND", f"No fulfillment order {request.path_params['id']}")
        return json_response(order)

    async def cancel_order(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        order = self.data["fulfillment_orders"].get(request.path_params["id"])
        if order is None:
            return wms_error(404, "NOT_FOUND", f"No fulfillment order {request.path_params['id']}")
        if order["status"] == "shipped":
            return wms_error(409, "ALREADY_SHIPPED", "A shipped order cannot be cancelled")
        if order["status"] != "cancelled":
            for line in order["lines"]:
                self.data["inventory"][line["sku"]]["allocated"] -= line["quantity"]
            order["status"] = "cancelled"
        return json_response(order)

    async def shipments(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        since = request.query_params.get("updated_since", "")
        try:
            limit = int(request.query_params.get("limit", "50"))
            start = (
                int(base64.urlsafe_b64decode(request.query_params["cursor"]).decode())
                if request.query_params.get("cursor")
                else 0
            )
        except ValueError:
            return wms_error(400, "INVALID_CURSOR", "cursor or limit is invalid")
        rows = sorted(
            (s for s in self.data["shipments"].values() if s["updated_at"] > since), key=lambda s: s["updated_at"]
        )
        page = rows[start : start + limit]
        cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if start + limit < len(rows) else None
        return json_response({"data": page, "next_cursor": cursor})

    async def inventory(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        sku = request.query_params.get("sku")
        rows = [
            dict(r, available=r["on_hand"] - r["allocated"])
            for r in self.data["inventory"].values()
            if sku is None or r["sku"] == sku
        ]
        return json_response({"data": rows, "next_cursor": None})

    async def ship(self, request: Request) -> Response:
        order = self.data["fulfillment_orders"].get(request.path_params["id"])
        if order is None or order["status"] != "received":
            return wms_error(409, "NOT_SHIPPABLE", "Only a received order can be shipped")
        for line in order["lines"]:
            stock = self.data["inventory"][line["sku"]]
            stock["allocated"] -= line["quantity"]
            stock["on_hand"] -= line["quantity"]
        number = f"SH-{self.next_number('shipment', start=2):04d}"
        stamp = _now()
        shipment = {
            "id": number,
            "fulfillment_order_id": order["id"],
            "order_ref": order["order_ref"],
            "carrier": "UPS",
            "service_level": order["service_level"],
            "tracking_number": "1Z" + secrets.token_hex(8).upper(),
            "shipped_at": stamp,
            "updated_at": stamp,
            "lines": order["lines"],
        }
        self.data["shipments"][number] = shipment
        order["status"] = "shipped"
        return json_response(shipment, 201)


SIM = Wms
