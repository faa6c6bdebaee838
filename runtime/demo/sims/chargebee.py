"""A Chargebee API v2 simulator (https://apidocs.chargebee.com/docs/api, Product Catalog 2.0), enough for
the `chargebee` preset and the `chargebee` package pointed at it.

- auth: HTTP Basic with the site's API key as the user name; a wrong key is 401 `api_authentication_failed`;
- bodies: form-encoded with nested keys (`billing_address[first_name]`) and index-last arrays
  (`subscription_items[item_price_id][0]`); answers wrap each resource (`{"customer": {…}}`);
- lists: `{"list": [{"customer": {…}}, …], "next_offset": "…"}` paged by `limit` (1..100, default 10)
  and the opaque `offset`;
- resources: customers (list, retrieve, create, update), subscriptions (list, create for a customer
  with items), invoices (list, retrieve), item prices (list);
- errors: `{message, api_error_code, error_code, param, type, http_status_code}` — 400 invalid_request /
  param_wrong_value, 404 resource_not_found, 429 api_request_limit_exceeded;
- idempotency: a POST with `chargebee-idempotency-key` seen before gets the first answer again (header
  `chargebee-idempotency-replayed: true`).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims._forms import parse_nested
from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

API_KEY = "test_syncline_sim_key"
SITE = "acme-test"
KEY_HEADER = "chargebee-idempotency-key"


def error(status: int, api_code: str, message: str, *, code: str = "", param: str | None = None,
          kind: str = "invalid_request") -> Response:  # fmt: skip
    body: dict[str, Any] = {"message": message, "api_error_code": api_code, "error_code": code or api_code,
                            "type": kind, "http_status_code": status}  # fmt: skip
    if param:
        body["param"] = param
    return json_response(body, status)


class ChargebeeSim(VendorSim):
    name = "chargebee"

    def seed(self) -> None:
        self.data = {"customer": {}, "subscription": {}, "invoice": {}, "item_price": {}}
        self.replays: dict[str, tuple[int, Any]] = {}
        for number in range(1, 6):
            self._store("customer", {"first_name": f"Buyer{number}", "email": f"buyer{number}@example.com",
                                     "preferred_currency_code": "EUR"}, f"cust_{number}")  # fmt: skip
        price = {"item_id": "pro", "name": "Pro EUR monthly", "currency_code": "EUR", "price": 4900, "period": 1}
        self._store("item_price", {**price, "period_unit": "month", "status": "active"}, "pro-EUR-monthly")
        self._store("invoice", {"customer_id": "cust_1", "status": "paid", "currency_code": "EUR", "total": 4900,
                                "line_items": [{"description": "Pro", "amount": 4900}]}, "inv_1")  # fmt: skip

    def _store(self, kind: str, fields: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
        number = self.counters[kind] = self.counters.get(kind, 0) + 1
        now = int(time.time())
        record = {"id": ident or f"{kind[:3]}_{number:04d}", "object": kind, "created_at": now, "updated_at": now,
                  "resource_version": now * 1000, **fields}  # fmt: skip
        self.data[kind][record["id"]] = record
        return record

    def rate_limited(self, fault: Fault) -> Response:
        return error(429, "api_request_limit_exceeded", "Sorry, access has been blocked temporarily due to request "
                     "count exceeding acceptable limits.", code="api_request_limit_exceeded", kind="")  # fmt: skip

    def _guard(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        try:
            user = base64.b64decode(header[6:]).decode().partition(":")[0] if header.startswith("Basic ") else ""
        except ValueError:
            user = ""
        if user != API_KEY:
            return error(401, "api_authentication_failed", "Sorry, authentication failed. Invalid api key",
                         code="api_authentication_invalid_key", kind="")  # fmt: skip
        return None

    # --------------------------------------------------------------------------------------- handlers

    def _list(self, request: Request, kind: str, extra: Any = None) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return error(400, "invalid_request", "limit : invalid value", code="param_wrong_value", param="limit")
        rows = list(self.data[kind].values())
        for name in ("customer_id", "status", "email"):
            value = query.get(f"{name}[is]")
            if value is not None:
                rows = [r for r in rows if str(r.get(name)) == value]
        start = 0
        if "offset" in query:
            try:
                start = int(json.loads(query["offset"])[0])
            except (ValueError, IndexError, TypeError):
                return error(400, "invalid_request", "offset : invalid value", code="param_wrong_value", param="offset")
        page = rows[start : start + limit]
        body: dict[str, Any] = {"list": [{kind: r, **(extra(r) if extra else {})} for r in page]}
        if start + limit < len(rows):
            body["next_offset"] = json.dumps([str(start + limit)])
        return json_response(body)

    async def _write(self, request: Request, make: Any) -> Response:
        key = request.headers.get(KEY_HEADER)
        if key and key in self.replays:
            status, body = self.replays[key]
            return json_response(body, status, {"chargebee-idempotency-replayed": "true"})
        response: Response = make(parse_nested(await request.body()))
        if key and response.status_code < 500:
            self.replays[key] = (response.status_code, loads(bytes(response.body)))
        return response

    async def customers(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        if request.method == "GET":
            return self._list(request, "customer")

        def make(fields: dict[str, Any]) -> Response:
            if "email" in fields and "@" not in fields["email"]:
                return error(400, "invalid_request", "email : invalid email", code="param_wrong_value", param="email")
            return json_response({"customer": self._store("customer", fields, fields.pop("id", None))})

        return await self._write(request, make)

    async def customer(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        record = self.data["customer"].get(request.path_params["id"])
        if record is None:
            return error(404, "resource_not_found", "Sorry, we couldn't find that resource", code="resource_not_found")
        if request.method == "GET":
            return json_response({"customer": record})

        def make(fields: dict[str, Any]) -> Response:
            record.update(fields, updated_at=int(time.time()))
            return json_response({"customer": record})

        return await self._write(request, make)

    async def subscription_for_items(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        customer = self.data["customer"].get(request.path_params["id"])
        if customer is None:
            return error(404, "resource_not_found", "Sorry, we couldn't find that resource", code="resource_not_found")

        def make(fields: dict[str, Any]) -> Response:
            items = fields.get("subscription_items") or {}
            prices = items.get("item_price_id") or []
            if not prices:
                return error(400, "invalid_request", "subscription_items[item_price_id][0] : cannot be blank",
                             code="param_required", param="subscription_items[item_price_id][0]")  # fmt: skip
            unknown = [p for p in prices if p not in self.data["item_price"]]
            if unknown:
                return error(404, "resource_not_found", f"item_price {unknown[0]} not found", code="resource_not_found")
            quantities = items.get("quantity") or []
            lines = [{"item_price_id": p, "item_type": "plan", "quantity": int(quantities[i]) if i < len(quantities)
                      else 1} for i, p in enumerate(prices)]  # fmt: skip
            fields = {"customer_id": customer["id"], "status": "active", "currency_code": "EUR"}
            subscription = self._store("subscription", {**fields, "subscription_items": lines})
            return json_response({"subscription": subscription, "customer": customer})

        return await self._write(request, make)

    async def subscriptions(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        return self._list(request, "subscription", lambda r: {"customer": self.data["customer"].get(r["customer_id"])})

    async def invoices(self, request: Request) -> Response:
        denied = self._guard(request)
        return denied if denied is not None else self._list(request, "invoice")

    async def item_prices(self, request: Request) -> Response:
        denied = self._guard(request)
        return denied if denied is not None else self._list(request, "item_price")

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v2/customers", self.customers, methods=["GET", "POST"]),
            Route("/api/v2/customers/{id}", self.customer, methods=["GET", "POST"]),
            Route("/api/v2/customers/{id}/subscription_for_items", self.subscription_for_items, methods=["POST"]),
            Route("/api/v2/subscriptions", self.subscriptions, methods=["GET"]),
            Route("/api/v2/invoices", self.invoices, methods=["GET"]),
            Route("/api/v2/item_prices", self.item_prices, methods=["GET"]),
        ]


SIM = ChargebeeSim
