"""A Stripe API v1 simulator (https://docs.stripe.com/api), enough for the `stripe` preset and the
official `stripe` package pointed at it (`stripe.api_base = sim.url`).

- auth: the secret key as a bearer token (or as the Basic user name); a wrong key is 401 with Stripe's
  error object;
- bodies: form-encoded with nested keys (`metadata[order_id]`, `items[0][price]`); answers are JSON
  objects with `id`, `object`, `created`, `livemode`, `metadata`;
- lists: `{object: list, data, has_more, url}` paged by `limit` (1..100, default 10) and
  `starting_after` / `ending_before`, filtered by the documented simple parameters;
- errors: `{"error": {type, code, message, param}}` — 400 parameter_missing, 404 resource_missing,
  402 card_declined for the test card token `tok_chargeDeclined`;
- idempotency: a write with an `Idempotency-Key` seen before gets the first answer again (header
  `Idempotent-Replayed: true`); the same key with other parameters is 400 `idempotency_error`;
- rate limit: 429 with `code: rate_limit` and `Stripe-Should-Retry: true`.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims._forms import parse_nested
from runtime.demo.sims.base import Fault, VendorSim, json_response

API_KEY = "sk_test_syncline_sim"
# collection → (id prefix, `object` name, required parameters, parameters that are integers)
COLLECTIONS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "customers": ("cus", "customer", (), ()),
    "products": ("prod", "product", ("name",), ()),
    "prices": ("price", "price", ("currency", "product"), ("unit_amount",)),
    "subscriptions": ("sub", "subscription", ("customer", "items"), ()),
    "invoices": ("in", "invoice", ("customer",), ()),
    "payment_intents": ("pi", "payment_intent", ("amount", "currency"), ("amount",)),
    "refunds": ("re", "refund", (), ("amount",)),
    "credit_notes": ("cn", "credit_note", ("invoice",), ("amount",)),
}
FILTERS = ("customer", "email", "status", "product", "invoice", "active", "currency")


def error(status: int, kind: str, message: str, code: str | None = None, param: str | None = None) -> Response:
    body: dict[str, Any] = {"type": kind, "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return json_response({"error": body}, status, {"Request-Id": f"req_{int(time.time() * 1000)}"})


class StripeSim(VendorSim):
    name = "stripe"

    def seed(self) -> None:
        self.data = {name: {} for name in COLLECTIONS}
        self.idempotent: dict[str, tuple[str, int, Any]] = {}
        for number in range(1, 6):
            self._store("customers", {"email": f"buyer{number}@example.com", "name": f"Buyer {number}"})
        product = self._store("products", {"name": "Syncline Pro", "active": True})
        self._store("prices", {"product": product["id"], "currency": "eur", "unit_amount": 4900})
        self._store("invoices", {"customer": "cus_1", "currency": "eur", "status": "open", "total": 4900})

    def _store(self, collection: str, fields: dict[str, Any]) -> dict[str, Any]:
        prefix, kind, _, _ = COLLECTIONS[collection]
        number = self.counters[collection] = self.counters.get(collection, 0) + 1  # seed() runs under the lock
        record = {
            "id": f"{prefix}_{number}",
            "object": kind,
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
            **fields,
        }
        self.data[collection][record["id"]] = record
        return record

    def rate_limited(self, fault: Fault) -> Response:
        return json_response(
            {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}},
            429,
            {"Stripe-Should-Retry": "true", **fault.headers},
        )

    # ------------------------------------------------------------------------------------------ auth

    def _key(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return header[7:]
        if header.startswith("Basic "):
            try:
                return base64.b64decode(header[6:]).decode().partition(":")[0]
            except ValueError:
                return None
        return None

    def _unauthorised(self, request: Request) -> Response | None:
        key = self._key(request)
        if key == API_KEY:
            return None
        shown = f"{key[:8]}{'*' * 8}" if key else ""
        message = f"Invalid API Key provided: {shown}" if key else "You did not provide an API key."
        return error(401, "invalid_request_error", message)

    # --------------------------------------------------------------------------------------- handlers

    async def collection(self, request: Request) -> Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        name = request.path_params["collection"]
        if name not in COLLECTIONS:
            return error(404, "invalid_request_error", f"Unrecognized request URL (GET: /v1/{name}).")
        if request.method == "GET":
            return self._list(request, name)
        return await self._idempotent(request, lambda fields: self._create(name, fields))

    async def record(self, request: Request) -> Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        name, ident = request.path_params["collection"], request.path_params["id"]
        if name not in COLLECTIONS:
            return error(404, "invalid_request_error", f"Unrecognized request URL (GET: /v1/{name}/{ident}).")
        record = self.data[name].get(ident)
        if record is None:
            kind = COLLECTIONS[name][1]
            return error(404, "invalid_request_error", f"No such {kind}: '{ident}'", "resource_missing", "id")
        if request.method == "GET":
            return json_response(record)
        if request.method == "DELETE":
            del self.data[name][ident]
            return json_response({"id": ident, "object": record["object"], "deleted": True})

        def update(fields: dict[str, Any]) -> Response:
            metadata = {**record.get("metadata", {}), **fields.pop("metadata", {})}
            record.update(self._typed(name, fields), metadata=metadata)
            return json_response(record)

        return await self._idempotent(request, update)

    def _list(self, request: Request, name: str) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return error(400, "invalid_request_error", "Invalid integer: limit", "parameter_invalid_integer", "limit")
        rows = [r for r in self.data[name].values() if all(_matches(r, f, query[f]) for f in FILTERS if f in query)]
        after, before = query.get("starting_after"), query.get("ending_before")
        ids = [r["id"] for r in rows]
        if after:
            if after not in ids:
                return error(404, "invalid_request_error", f"No such object: '{after}'", "resource_missing")
            rows = rows[ids.index(after) + 1 :]
        elif before:
            if before not in ids:
                return error(404, "invalid_request_error", f"No such object: '{before}'", "resource_missing")
            rows = rows[: ids.index(before)][-limit:]
        page = rows[:limit]
        return json_response({"object": "list", "data": page, "has_more": len(rows) > limit, "url": f"/v1/{name}"})

    def _create(self, name: str, fields: dict[str, Any]) -> Response:
        for required in COLLECTIONS[name][2]:
            if required not in fields or fields[required] in ("", None):
                return error(
                    400,
                    "invalid_request_error",
                    f"Missing required param: {required}.",
                    "parameter_missing",
                    required,
                )
        if fields.get("payment_method") == "pm_card_chargeDeclined" or fields.get("source") == "tok_chargeDeclined":
            return error(402, "card_error", "Your card was declined.", "card_declined")
        typed = self._typed(name, fields)
        if name == "payment_intents":
            typed.setdefault("status", "requires_payment_method")
        if name == "subscriptions":
            items = [
                {**item, "quantity": int(item.get("quantity", "1"))}
                for item in typed.get("items", [])
                if isinstance(item, dict)
            ]
            typed["items"] = {"object": "list", "data": items, "has_more": False}
            typed.setdefault("status", "active")
        return json_response(self._store(name, typed))

    def _typed(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        out = dict(fields)
        for key in COLLECTIONS[name][3]:
            if isinstance(out.get(key), str) and out[key].lstrip("-").isdigit():
                out[key] = int(out[key])
        for key, value in out.items():
            if value in ("true", "false"):
                out[key] = value == "true"
        return out

    async def _idempotent(self, request: Request, apply: Callable[[dict[str, Any]], Response]) -> Response:
        body = await request.body()
        fields = parse_nested(body)
        key = request.headers.get("idempotency-key")
        if not key:
            return apply(fields)
        fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + body).hexdigest()
        seen = self.idempotent.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                message = (
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request."
                )
                return error(400, "idempotency_error", message)
            self.counters["idempotent_replays"] = self.counters.get("idempotent_replays", 0) + 1
            return json_response(seen[2], seen[1], {"Idempotent-Replayed": "true", "Idempotency-Key": key})
        response = apply(fields)
        if response.status_code < 500:
            self.idempotent[key] = (fingerprint, response.status_code, _body(response))
        return response

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/{collection}", self.collection, methods=["GET", "POST"]),
            Route("/v1/{collection}/{id}", self.record, methods=["GET", "POST", "DELETE"]),
        ]


def _matches(record: dict[str, Any], field: str, wanted: str) -> bool:
    value = record.get(field)
    if isinstance(value, bool):
        return ("true" if value else "false") == wanted
    return str(value) == wanted


def _body(response: Response) -> Any:
    from runtime.expr import loads

    return loads(bytes(response.body))


SIM = StripeSim
