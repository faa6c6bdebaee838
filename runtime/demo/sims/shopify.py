"""A Shopify REST Admin API simulator (https://shopify.dev/docs/api/admin-rest, version 2024-07), enough
for the `shopify` preset and the `ShopifyAPI` package pointed at it.

- auth: `X-Shopify-Access-Token`; a wrong token is 401 `{"errors": "[API] Invalid API key or access token …"}`;
- resources under `/admin/api/{version}/`: `products`, `customers`, `orders` (`.json`, list, get, create,
  update, delete), an order's `fulfillments.json`; bodies wrap the record (`{"product": {…}}`);
- lists: `limit` (1..250, default 50) and cursor paging by `page_info` in a `Link` header
  (`rel="next"`, `rel="previous"`); a `page_info` request may carry only `limit` and `fields`;
- errors: 422 `{"errors": {"title": ["can't be blank"]}}`, 404 `{"errors": "Not Found"}`;
- rate limit: a leaky bucket of 40 calls leaking 2 a second, reported in
  `X-Shopify-Shop-Api-Call-Limit: used/40`; a call into a full bucket is 429 with `Retry-After: 2.0`.
  `clock` is injectable so tests can fill and drain the bucket without waiting.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

ACCESS_TOKEN = "shpat_syncline_sim"
RESOURCES = {"products": "product", "customers": "customer", "orders": "order"}
REQUIRED = {"products": ("title",), "customers": (), "orders": ("line_items",)}
BUCKET_SIZE = 40
LEAK_PER_SECOND = 2.0
THROTTLED = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."


class ShopifySim(VendorSim):
    name = "shopify"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.level = 0.0
        self.stamp = clock()
        super().__init__()

    def seed(self) -> None:
        self.data = {name: {} for name in (*RESOURCES, "fulfillments")}
        self.level = 0.0
        for number in range(1, 6):
            self._store("products", {"title": f"Widget {number}", "status": "active", "vendor": "Acme",
                                     "variants": [{"sku": f"W-{number}", "price": f"{number}9.00"}]})  # fmt: skip
        self._store("customers", {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"})
        self._store(
            "orders",
            {
                "email": "ada@example.com",
                "currency": "EUR",
                "financial_status": "paid",
                "total_price": "29.00",
                "line_items": [{"sku": "W-2", "quantity": 1, "price": "29.00"}],
            },
        )

    def _store(self, resource: str, fields: dict[str, Any]) -> dict[str, Any]:
        number = self.counters[resource] = self.counters.get(resource, 0) + 1
        ident = 632910392 + number if resource == "products" else 207119550 + number
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        kind = RESOURCES.get(resource, "fulfillment").capitalize()
        record = {"id": ident, "admin_graphql_api_id": f"gid://shopify/{kind}/{ident}", **fields}
        record.update(created_at=stamp, updated_at=stamp)
        self.data[resource][str(ident)] = record
        return record

    # ---------------------------------------------------------------------------------- rate limit

    def _take_call(self) -> bool:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.stamp) * LEAK_PER_SECOND)
        self.stamp = now
        if self.level + 1 > BUCKET_SIZE:
            return False
        self.level += 1
        return True

    def _limit_header(self) -> dict[str, str]:
        return {"X-Shopify-Shop-Api-Call-Limit": f"{round(self.level)}/{BUCKET_SIZE}"}

    def rate_limited(self, fault: Fault) -> Response:
        return json_response({"errors": THROTTLED}, 429, {"Retry-After": "2.0", **fault.headers})

    def _answer(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(value, status, {**self._limit_header(), **(headers or {})})

    def _guard(self, request: Request) -> Response | None:
        if request.headers.get("x-shopify-access-token") != ACCESS_TOKEN:
            message = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            return json_response({"errors": message}, 401)
        if not self._take_call():
            return json_response({"errors": THROTTLED}, 429, {"Retry-After": "2.0", **self._limit_header()})
        return None

    # --------------------------------------------------------------------------------------- handlers

    async def collection(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        resource = request.path_params["resource"]
        if resource not in RESOURCES:
            return self._answer({"errors": "Not Found"}, 404)
        if request.method == "POST":
            return await self._create(request, resource)
        query = request.query_params
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 250:
            return self._answer({"errors": {"limit": ["must be between 1 and 250"]}}, 400)
        rows = list(self.data[resource].values())
        start = 0
        if "page_info" in query:
            extra = set(query) - {"page_info", "limit", "fields"}
            if extra:
                return self._answer(
                    {"errors": {"page_info": ["cannot be combined with " + ", ".join(sorted(extra))]}}, 400
                )
            try:
                start = int(base64.urlsafe_b64decode(query["page_info"].encode()).decode())
            except ValueError:
                return self._answer({"errors": {"page_info": ["Invalid value."]}}, 400)
        else:
            for field in ("status", "email", "financial_status", "vendor"):
                if field in query:
                    rows = [r for r in rows if str(r.get(field)) == query[field]]
            if "ids" in query:
                wanted = set(query["ids"].split(","))
                rows = [r for r in rows if str(r["id"]) in wanted]
        page = rows[start : start + limit]
        links = []
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        if start > 0:
            token = base64.urlsafe_b64encode(str(max(0, start - limit)).encode()).decode()
            links.append(f'<{base}?limit={limit}&page_info={token}>; rel="previous"')
        if start + limit < len(rows):
            token = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            links.append(f'<{base}?limit={limit}&page_info={token}>; rel="next"')
        return self._answer({resource: page}, headers={"Link": ", ".join(links)} if links else None)

    async def _create(self, request: Request, resource: str) -> Response:
        body = loads(await request.body() or b"{}")
        fields = body.get(RESOURCES[resource]) if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._answer({"errors": {RESOURCES[resource]: "Required parameter missing or invalid"}}, 400)
        missing = {name: ["can't be blank"] for name in REQUIRED[resource] if not fields.get(name)}
        if missing:
            return self._answer({"errors": missing}, 422)
        return self._answer({RESOURCES[resource]: self._store(resource, fields)}, 201)

    async def record(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        resource, ident = request.path_params["resource"], request.path_params["id"]
        record = self.data.get(resource, {}).get(ident) if resource in RESOURCES else None
        if record is None:
            return self._answer({"errors": "Not Found"}, 404)
        if request.method == "GET":
            return self._answer({RESOURCES[resource]: record})
        if request.method == "DELETE":
            del self.data[resource][ident]
            return self._answer({})
        body = loads(await request.body() or b"{}")
        fields = body.get(RESOURCES[resource]) if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._answer({"errors": {RESOURCES[resource]: "Required parameter missing or invalid"}}, 400)
        record.update({k: v for k, v in fields.items() if k != "id"})
        record["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        return self._answer({RESOURCES[resource]: record})

    async def fulfillments(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        order = self.data["orders"].get(request.path_params["id"])
        if order is None:
            return self._answer({"errors": "Not Found"}, 404)
        if request.method == "GET":
            mine = [f for f in self.data["fulfillments"].values() if f["order_id"] == order["id"]]
            return self._answer({"fulfillments": mine})
        body = loads(await request.body() or b"{}")
        fields = body.get("fulfillment") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._answer({"errors": {"fulfillment": "Required parameter missing or invalid"}}, 400)
        made = self._store("fulfillments", {**fields, "order_id": order["id"], "status": "success"})
        order["fulfillment_status"] = "fulfilled"
        return self._answer({"fulfillment": made}, 201)

    def vendor_routes(self) -> list[BaseRoute]:
        prefix = "/admin/api/{version}"
        return [
            Route(prefix + "/orders/{id}/fulfillments.json", self.fulfillments, methods=["GET", "POST"]),
            Route(prefix + "/{resource}.json", self.collection, methods=["GET", "POST"]),
            Route(prefix + "/{resource}/{id}.json", self.record, methods=["GET", "PUT", "DELETE"]),
        ]


SIM = ShopifySim
