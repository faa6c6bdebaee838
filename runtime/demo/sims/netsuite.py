"""NetSuite simulator: SuiteTalk REST web services (`/services/rest/record/v1`, `/services/rest/query/v1/suiteql`)
as Oracle's NetSuite help documents them.

- Auth: token-based authentication, OAuth 1.0a with HMAC-SHA256 and `realm` = the account id. Every
  request's signature is verified by `oauthlib`'s own server-side `ResourceEndpoint` (an independent
  implementation); a bad signature, a replayed nonce or a wrong realm is 401 `INVALID_LOGIN`.
- Records: customer, salesOrder, invoice, creditMemo, customerPayment (applied to invoices),
  inventoryItem, itemFulfillment. `GET /record/v1/<type>` lists
  ids with `limit`/`offset`, `hasMore`, `totalResults` and `links` (rel next); `GET …/<id>` a record
  (`expandSubResources=true` inlines `item.items`); `POST` creates and answers 204 with `Location`;
  `PATCH …/<id>` updates (204); `PUT …/eid:<externalId>` upserts by external id — NetSuite's way to
  make a synchronous create idempotent.
- SuiteQL: `POST /query/v1/suiteql?limit=&offset=` with `Prefer: transient` and `{"q": "SELECT …"}`
  (`SELECT cols FROM table [WHERE col = 'v' [AND …]] [ORDER BY col]`) answers `items`, `hasMore`,
  `offset`, `count`, `totalResults`.
- Errors: RFC 9457 problem details with `o:errorDetails: [{detail, o:errorCode, o:errorPath}]`; the
  concurrency limit is 429 `CONCURRENCY_LIMIT_EXCEEDED`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from oauthlib.oauth1 import RequestValidator, ResourceEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

ACCOUNT = "1234567_SB1"
CONSUMER_KEY = "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4"
CONSUMER_SECRET = "d6d9a8b1c7e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7"
TOKEN_ID = "2c6a3b9bc0a2b1e4f5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8"
TOKEN_SECRET = "f1e2d3c4b5a6978877665544332211ffeeddccbbaa99887766554433221100ab"
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
RECORD_TYPES = (
    "customer",
    "salesOrder",
    "invoice",
    "creditMemo",
    "customerPayment",
    "inventoryItem",
    "itemFulfillment",
)
TRANSACTIONS = {"salesOrder": ("SO", "SalesOrd"), "invoice": ("INV", "CustInvc"), "creditMemo": ("CM", "CustCred")}
CURRENCIES = {"1": "USD", "2": "GBP", "3": "CAD", "4": "EUR", "5": "JPY", "6": "KWD"}
# units of the subsidiary's base currency (USD) per unit of the transaction currency
EXCHANGE_RATES = {
    "1": Decimal("1"),
    "2": Decimal("1.27"),
    "3": Decimal("0.74"),
    "4": Decimal("1.08"),
    "5": Decimal("0.0067"),
    "6": Decimal("3.2541"),
}
STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
}


def problem(status: int, code: str, detail: str, path: str | None = None) -> Response:
    """NetSuite's error body (RFC 9457 problem details with `o:errorDetails`)."""
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        entry["o:errorPath"] = path
    body = {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.{status - 399}",
        "title": STATUS_TEXT.get(status, "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }
    return json_response(body, status, media="application/vnd.oracle.resource+json; type=error")


class _Validator(RequestValidator):
    """What the account knows: one integration record, one token, its account id as the realm."""

    enforce_ssl = False
    client_key_length = (20, 64)
    access_token_length = (20, 64)
    nonce_length = (20, 64)
    allowed_signature_methods = ("HMAC-SHA256",)
    dummy_client = "x" * 64
    dummy_access_token = "y" * 64

    def __init__(self, sim: NetSuite) -> None:
        super().__init__()
        self.sim = sim

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == self.sim.consumer_key

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return token == self.sim.token_id

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: Any,
        request_token: Any = None,
        access_token: Any = None,
    ) -> bool:
        if nonce in self.sim.nonces:
            return False
        self.sim.nonces.add(nonce)
        return True

    def validate_realms(self, client_key: str, token: str, request: Any, uri: Any = None, realms: Any = None) -> bool:
        return bool(request.realm == self.sim.account)

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.sim.consumer_secret

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return self.sim.token_secret


def _ref(record_type: str, record_id: str, name: str, base: str) -> dict[str, Any]:
    return {
        "links": [{"rel": "self", "href": f"{base}{RECORD}/{record_type}/{record_id}"}],
        "id": record_id,
        "refName": name,
    }


class NetSuite(VendorSim):
    name = "netsuite"

    def __init__(
        self,
        *,
        account: str = ACCOUNT,
        consumer_key: str = CONSUMER_KEY,
        consumer_secret: str = CONSUMER_SECRET,
        token_id: str = TOKEN_ID,
        token_secret: str = TOKEN_SECRET,
    ) -> None:
        self.account = account
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.token_id = token_id
        self.token_secret = token_secret
        self.nonces: set[str] = set()
        self.verified = 0  # requests whose signature oauthlib verified
        self.endpoint = ResourceEndpoint(_Validator(self))
        super().__init__()

    def seed(self) -> None:
        self.data = {
            "customer": {
                "107": {
                    "id": "107",
                    "entityId": "CUST-107",
                    "companyName": "Acme Corp",
                    "email": "ap@acme.example",
                    "currency": "1",
                    "externalId": "crm-0001",
                    "lastModifiedDate": "2026-11-20T10:00:00Z",
                },
                "108": {
                    "id": "108",
                    "entityId": "CUST-108",
                    "companyName": "Kanto Trading KK",
                    "email": "ar@kanto.example",
                    "currency": "5",
                    "externalId": "crm-0002",
                    "lastModifiedDate": "2026-11-21T10:00:00Z",
                },
                "109": {
                    "id": "109",
                    "entityId": "CUST-109",
                    "companyName": "Gulf Supplies WLL",
                    "email": "fin@gulf.example",
                    "currency": "6",
                    "externalId": "crm-0003",
                    "lastModifiedDate": "2026-11-22T10:00:00Z",
                },
            },
            "inventoryItem": {
                "42": {"id": "42", "itemId": "WIDGET-42", "displayName": "Widget", "basePrice": Decimal("10.50")},
                "43": {"id": "43", "itemId": "GADGET-43", "displayName": "Gadget", "basePrice": Decimal("99.00")},
            },
            "salesOrder": {},
            "invoice": {},
            "creditMemo": {},
            "customerPayment": {},
            "itemFulfillment": {},
        }
        self.counters["transaction"] = 500
        self.nonces = set()

    def rate_limited(self, fault: Fault) -> Response:
        return problem(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route(SUITEQL, self.suiteql, methods=["POST"]),
            Route(RECORD + "/{record_type}", self.collection, methods=["GET", "POST"]),
            Route(RECORD + "/{record_type}/{record_id}", self.single, methods=["GET", "PATCH", "PUT", "DELETE"]),
        ]

    # ------------------------------------------------------------------------------------------ auth

    async def _verified(self, request: Request) -> bool:
        body = (await request.body()).decode("utf-8", errors="replace") or None
        headers = {name.title(): value for name, value in request.headers.items()}
        valid, _ = self.endpoint.validate_protected_resource_request(str(request.url), request.method, body, headers)
        if valid:
            self.verified += 1
        return bool(valid)

    def _base(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    # --------------------------------------------------------------------------------------- records

    def _view(self, record_type: str, record: dict[str, Any], base: str, expand: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"links": [{"rel": "self", "href": f"{base}{RECORD}/{record_type}/{record['id']}"}]}
        for key, value in record.items():
            if key in ("entity_id", "lines", "currency"):
                continue
            out[key] = value
        if "currency" in record:
            out["currency"] = _ref("currency", record["currency"], CURRENCIES.get(record["currency"], "?"), base)
        if "entity_id" in record:
            customer = self.data["customer"].get(record["entity_id"], {})
            field = "customer" if record_type == "customerPayment" else "entity"
            out[field] = _ref("customer", record["entity_id"], customer.get("companyName", ""), base)
        if "lines" in record:
            link: dict[str, Any] = {
                "links": [{"rel": "self", "href": f"{base}{RECORD}/{record_type}/{record['id']}/item"}]
            }
            if expand:
                link["items"] = [
                    {
                        **{k: v for k, v in line.items() if k != "item_id"},
                        "item": _ref(
                            "inventoryItem",
                            line["item_id"],
                            self.data["inventoryItem"].get(line["item_id"], {}).get("itemId", ""),
                            base,
                        ),
                    }
                    for line in record["lines"]
                ]
            out["item"] = link
        return out

    async def collection(self, request: Request) -> Response:
        if not await self._verified(request):
            return problem(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit Trail.")
        record_type = request.path_params["record_type"]
        if record_type not in RECORD_TYPES:
            return problem(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist.")
        base = self._base(request)
        if request.method == "POST":
            return self._save(request, record_type, None, await self._json(request), base)
        try:
            limit = int(request.query_params.get("limit", "1000"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return problem(400, "INVALID_PARAMETER", "limit and offset must be integers.")
        if not 1 <= limit <= 1000 or offset % limit:
            return problem(400, "INVALID_PARAMETER", "The offset must be a multiple of limit (1..1000).")
        ids = sorted(self.data[record_type], key=int)
        page = ids[offset : offset + limit]
        url = f"{base}{RECORD}/{record_type}"
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        if offset + limit < len(ids):
            links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        body = {
            "links": links,
            "count": len(page),
            "hasMore": offset + limit < len(ids),
            "items": [{"links": [{"rel": "self", "href": f"{url}/{i}"}], "id": i} for i in page],
            "offset": offset,
            "totalResults": len(ids),
        }
        return json_response(body)

    async def single(self, request: Request) -> Response:
        if not await self._verified(request):
            return problem(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit Trail.")
        record_type, record_id = request.path_params["record_type"], request.path_params["record_id"]
        if record_type not in RECORD_TYPES:
            return problem(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist.")
        base = self._base(request)
        records = self.data[record_type]
        if record_id.startswith("eid:"):
            found = next((r for r in records.values() if r.get("externalId") == record_id[4:]), None)
            if request.method == "PUT":
                body = await self._json(request)
                if isinstance(body, dict):
                    body["externalId"] = record_id[4:]
                return self._save(request, record_type, found["id"] if found else None, body, base)
            record_id = found["id"] if found else ""
        record = records.get(record_id)
        if record is None:
            return problem(
                404, "NONEXISTENT_ID", "The record instance does not exist. Provide a valid record instance ID."
            )
        if request.method == "GET":
            expand = request.query_params.get("expandSubResources") == "true"
            return json_response(self._view(record_type, record, base, expand))
        if request.method == "DELETE":
            del records[record_id]
            return Response(status_code=204)
        if request.method == "PUT":
            return problem(405, "INVALID_METHOD", "PUT is supported with an external id (eid:) only.")
        return self._save(request, record_type, record_id, await self._json(request), base)

    async def _json(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return loads(raw) if raw else None
        except ValueError:
            return None

    def _save(self, request: Request, record_type: str, record_id: str | None, body: Any, base: str) -> Response:
        if not isinstance(body, dict):
            return problem(400, "INVALID_CONTENT", "The request body is not valid JSON.")
        existing = self.data[record_type].get(record_id) if record_id else None
        record: dict[str, Any] = dict(existing or {})
        if record_type in TRANSACTIONS:
            error = self._transaction(record, body, creating=existing is None)
            if error is not None:
                return error
        elif record_type == "customerPayment":
            error = self._payment(record, body, creating=existing is None)
            if error is not None:
                return error
        elif record_type == "customer":
            if existing is None and not body.get("companyName"):
                return problem(400, "USER_ERROR", "Please enter value(s) for: Company Name", "companyName")
            record.update({k: v for k, v in body.items() if k not in ("id", "links")})
            if "currency" in body and isinstance(body["currency"], dict):
                record["currency"] = str(body["currency"].get("id"))
        else:
            return problem(405, "INVALID_METHOD", f"Writing {record_type} is not supported by this simulator.")
        if existing is None:
            number = self.next_number("transaction" if record_type != "customer" else "customer", start=200)
            record["id"] = str(number)
            if record_type in TRANSACTIONS:
                record["tranId"] = TRANSACTIONS[record_type][0] + str(1000 + number)
            elif record_type == "customerPayment":
                record["tranId"] = f"PYMT{1000 + number}"
        record["lastModifiedDate"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.data[record_type][record["id"]] = record
        return Response(status_code=204, headers={"Location": f"{base}{RECORD}/{record_type}/{record['id']}"})

    def _transaction(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> Response | None:
        entity = body.get("entity")
        if entity is not None or creating:
            entity_id = str(entity.get("id")) if isinstance(entity, dict) else None
            if entity_id is None and isinstance(entity, dict) and entity.get("externalId"):
                entity_id = next(
                    (c["id"] for c in self.data["customer"].values() if c.get("externalId") == entity["externalId"]),
                    None,
                )
            if entity_id not in self.data["customer"]:
                return problem(
                    400,
                    "INVALID_VALUE",
                    "Invalid value for the resource or sub-resource field 'entity'. Provide a valid value.",
                    "entity",
                )
            record["entity_id"] = entity_id
        currency = body.get("currency")
        if isinstance(currency, dict):
            record["currency"] = str(currency.get("id"))
        elif creating:
            record["currency"] = self.data["customer"][record["entity_id"]].get("currency", "1")
        items = body.get("item", {}).get("items") if isinstance(body.get("item"), dict) else None
        if items is not None or creating:
            if not items:
                return problem(400, "USER_ERROR", "You must enter at least one line item for this transaction.", "item")
            lines = []
            for index, line in enumerate(items):
                item = line.get("item") if isinstance(line, dict) else None
                item_id = str(item.get("id")) if isinstance(item, dict) else None
                if item_id not in self.data["inventoryItem"]:
                    return problem(
                        400,
                        "INVALID_VALUE",
                        f"Invalid value for the field 'item' on line {index + 1}.",
                        f"item.items[{index}].item",
                    )
                quantity = Decimal(str(line.get("quantity", 1)))
                rate = Decimal(str(line.get("rate", self.data["inventoryItem"][item_id]["basePrice"])))
                amount = Decimal(str(line["amount"])) if line.get("amount") is not None else quantity * rate
                tax = Decimal(str(line.get("tax1Amt", 0)))
                lines.append(
                    {
                        "line": index + 1,
                        "item_id": item_id,
                        "quantity": quantity,
                        "rate": rate,
                        "amount": amount,
                        "tax1Amt": tax,
                        "description": line.get("description"),
                    }
                )
            record["lines"] = lines
            subtotal = sum((line["amount"] for line in lines), Decimal(0))
            tax_total = sum((line["tax1Amt"] for line in lines), Decimal(0))
            discount = Decimal(str(body.get("discountTotal", record.get("discountTotal", 0))))
            record.update(
                subtotal=subtotal, taxTotal=tax_total, discountTotal=discount, total=subtotal + tax_total - discount
            )
        for key in ("externalId", "otherRefNum", "memo", "tranDate", "shipDate"):
            if key in body:
                record[key] = body[key]
        record.setdefault("tranDate", dt.date.today().isoformat())
        record["exchangeRate"] = EXCHANGE_RATES.get(record.get("currency", "1"), Decimal(1))
        record.setdefault("status", {"id": "B", "refName": "Pending Fulfillment"})
        return None

    def _payment(self, record: dict[str, Any], body: dict[str, Any], *, creating: bool) -> Response | None:
        """A customer payment: `customer`, `payment` (the amount) and `apply.items[{doc: {id}, amount}]`,
        each applied amount taken off that invoice's `amountRemaining`."""
        customer = body.get("customer")
        customer_id = str(customer.get("id")) if isinstance(customer, dict) else None
        if creating and customer_id not in self.data["customer"]:
            return problem(400, "INVALID_VALUE", "Invalid value for the field 'customer'.", "customer")
        try:
            amount = Decimal(str(body.get("payment", record.get("payment", 0))))
        except ArithmeticError:
            return problem(400, "INVALID_VALUE", "Invalid value for the field 'payment'.", "payment")
        applied = body.get("apply", {}).get("items", []) if isinstance(body.get("apply"), dict) else []
        total = Decimal(0)
        for index, line in enumerate(applied):
            doc = line.get("doc") if isinstance(line, dict) else None
            invoice = self.data["invoice"].get(str(doc.get("id"))) if isinstance(doc, dict) else None
            if invoice is None:
                return problem(
                    400, "INVALID_VALUE", f"Invalid invoice on apply line {index + 1}.", f"apply.items[{index}].doc"
                )
            share = Decimal(str(line.get("amount", 0)))
            remaining = invoice.get("amountRemaining", invoice.get("total", Decimal(0)))
            if share > remaining:
                return problem(400, "USER_ERROR", "The amount applied exceeds the amount remaining on the invoice.")
            invoice["amountRemaining"] = remaining - share
            total += share
        if total > amount:
            return problem(400, "USER_ERROR", "The total applied exceeds the payment amount.", "payment")
        if customer_id:
            record["entity_id"] = customer_id
        record.update(payment=amount, applied=total, unapplied=amount - total)
        for key in ("externalId", "memo", "tranDate"):
            if key in body:
                record[key] = body[key]
        return None

    # ---------------------------------------------------------------------------------------- SuiteQL

    async def suiteql(self, request: Request) -> Response:
        if not await self._verified(request):
            return problem(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit Trail.")
        if request.headers.get("prefer", "").lower() != "transient":
            return problem(400, "INVALID_HEADER", "The request must have the header 'Prefer: transient'.")
        body = await self._json(request)
        query = body.get("q") if isinstance(body, dict) else None
        if not isinstance(query, str):
            return problem(400, "INVALID_CONTENT", 'The request body must be {"q": "<SuiteQL query>"}.')
        try:
            rows = self._run_query(query)
        except ValueError as exc:
            return problem(400, "INVALID_PARAMETER", f"Invalid search query: {exc}")
        limit = int(request.query_params.get("limit", "1000"))
        offset = int(request.query_params.get("offset", "0"))
        page = rows[offset : offset + limit]
        base = f"{self._base(request)}{SUITEQL}"
        links = [{"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"}]
        if offset + limit < len(rows):
            links.insert(0, {"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
        return json_response(
            {
                "links": links,
                "count": len(page),
                "hasMore": offset + limit < len(rows),
                "items": [{"links": [], **row} for row in page],
                "offset": offset,
                "totalResults": len(rows),
            }
        )

    def _table(self, name: str) -> list[dict[str, Any]]:
        if name == "customer":
            return [
                {
                    "id": c["id"],
                    "entityid": c["entityId"],
                    "companyname": c.get("companyName"),
                    "email": c.get("email"),
                    "currency": c.get("currency"),
                    "externalid": c.get("externalId"),
                    "lastmodifieddate": c.get("lastModifiedDate"),
                }
                for c in self.data["customer"].values()
            ]
        if name == "item":
            return [
                {"id": i["id"], "itemid": i["itemId"], "displayname": i["displayName"], "baseprice": i["basePrice"]}
                for i in self.data["inventoryItem"].values()
            ]
        if name == "transaction":
            kinds = {kind: code for kind, (_, code) in TRANSACTIONS.items()}
            return [
                {
                    "id": t["id"],
                    "tranid": t.get("tranId"),
                    "type": kinds[kind],
                    "entity": t.get("entity_id"),
                    "foreigntotal": t.get("total"),
                    "currency": t.get("currency"),
                    "externalid": t.get("externalId"),
                    "trandate": t.get("tranDate"),
                    "lastmodifieddate": t.get("lastModifiedDate"),
                }
                for kind in kinds
                for t in self.data[kind].values()
            ]
        raise ValueError(f"unknown table {name!r}")

    def _run_query(self, query: str) -> list[dict[str, Any]]:
        match = re.fullmatch(
            r"\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
            r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<dir>ASC|DESC))?)?\s*",
            query,
            re.IGNORECASE | re.DOTALL,
        )
        if match is None:
            raise ValueError("expected SELECT … FROM … [WHERE …] [ORDER BY …]")
        rows = self._table(match["table"].lower())
        if match["where"]:
            for condition in re.split(r"\s+AND\s+", match["where"], flags=re.IGNORECASE):
                test = re.fullmatch(r"(\w+)\s*(=|>|<|>=|<=)\s*('(?:[^']|'')*'|[\w.]+)", condition.strip())
                if test is None:
                    raise ValueError(f"unsupported condition {condition.strip()!r}")
                column, op, raw = test[1].lower(), test[2], test[3]
                value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
                rows = [r for r in rows if _compare(r.get(column), op, value)]
        if match["order"]:
            column = match["order"].lower()
            rows.sort(key=lambda r: str(r.get(column) or ""), reverse=(match["dir"] or "").upper() == "DESC")
        columns = [c.strip().lower() for c in match["cols"].split(",")]
        if columns != ["*"]:
            rows = [{c: r.get(c) for c in columns} for r in rows]
        return [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows]


def _compare(left: Any, op: str, right: str) -> bool:
    if left is None:
        return False
    text = str(left)
    if op == "=":
        return text == right
    ordered = {">": text > right, "<": text < right, ">=": text >= right, "<=": text <= right}
    return ordered[op]


SIM = NetSuite
