"""Zuora simulator: the v1 REST API (`/v1/...`) and its OAuth token endpoint, as Zuora's developer docs
describe them.

- Auth: `POST /oauth/token` (client credentials in the form) gives a bearer token; a call without one
  is 401 with `reasons: [{code: 90000011}]`.
- Errors come back as HTTP 200 with `"success": false`, a `processId` and `reasons: [{code, message}]`;
  the 8-digit code ends in its category (20 invalid value, 30 rule restriction, 40 not found,
  50 locking contention, 60 internal error, 70 request exceeded limit).
- Paging: list answers hold `nextPage` (an absolute URL) until the last page (`page`, `pageSize`).
- Writes honour `Idempotency-Key` (a repeat with the same key gets the first answer).
- Objects: accounts (`GET/POST /v1/accounts`, `GET /v1/accounts/{key}`), catalog products
  (`GET /v1/catalog/products`; with `Zuora-Version: 230.0` or later, or a dated version, each product's
  `productRatePlans` is the URL of `GET /v1/rateplan/{product}/productRatePlan`, as Zuora's version control
  says), subscriptions (`POST /v1/subscriptions`, `GET /v1/subscriptions/accounts/{key}`), invoices
  (`GET /v1/transactions/invoices/accounts/{key}`)
  payments (`POST /v1/payments`) and credit memos (`POST /v1/invoices/{key}/creditmemos`,
  `GET /v1/creditmemos?accountId=`).
- The rate limit is 429 with `RateLimit-Limit`/`RateLimit-Remaining`/`RateLimit-Reset` headers.
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

CLIENT_ID = "zuora-demo-client-0001"
CLIENT_SECRET = "zuora-demo-secret=secret"
DECIMALS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3, "BHD": 3}


def failure(code: int, message: str, status: int = 200) -> Response:
    """Zuora's error answer: HTTP 200 (usually) with success false."""
    body = {
        "success": False,
        "processId": secrets.token_hex(8).upper(),
        "reasons": [{"code": code, "message": message}],
    }
    return json_response(body, status)


def _version(request: Request) -> tuple[int, int]:
    """The `Zuora-Version` header as (minor version, fraction): a dated API version (`2024-05-20`, what Zuora's
    SDK sends) is later than every numbered one; absent or unreadable is the oldest behaviour."""
    value = request.headers.get("zuora-version", "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return (10**6, 0)
    major, _, minor = value.partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and (minor or "0").isdigit() else (0, 0)


def _uid() -> str:
    return "8a" + secrets.token_hex(15)


class Zuora(VendorSim):
    name = "zuora"

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.by_key: dict[str, Any] = {}
        super().__init__()

    def seed(self) -> None:
        account = "8ad0823f8455bb4a01845b3a0b4a7c10"
        self.data = {
            "accounts": {
                account: {
                    "id": account,
                    "accountNumber": "A00000001",
                    "name": "Globex Japan KK",
                    "currency": "JPY",
                    "status": "Active",
                    "crmId": "0015g00000Globex",
                    "billCycleDay": 1,
                    "billToContact": {
                        "firstName": "Hana",
                        "lastName": "Sato",
                        "country": "Japan",
                        "workEmail": "ap@globex.example",
                    },
                },
            },
            "products": {
                "8ad09be48db5aba7018db6004a8a2b35": {
                    "id": "8ad09be48db5aba7018db6004a8a2b35",
                    "sku": "SKU-00000001",
                    "name": "Platform",
                    "productRatePlans": [
                        {
                            "id": "8ad09be48db5aba7018db6004b4f2b3d",
                            "name": "Platform Monthly JPY",
                            "status": "Active",
                            "productRatePlanCharges": [
                                {
                                    "id": "8ad09be48db5aba7018db6004c2a2b41",
                                    "name": "Seats",
                                    "type": "Recurring",
                                    "model": "PerUnit",
                                    "pricing": [
                                        {"currency": "JPY", "price": Decimal("1200")},
                                        {"currency": "KWD", "price": Decimal("3.250")},
                                        {"currency": "USD", "price": Decimal("9.99")},
                                    ],
                                }
                            ],
                        },
                    ],
                },
            },
            "subscriptions": {},
            "invoices": {
                "8ad0823f8455bb4a01845b3a0c5e7c33": {
                    "id": "8ad0823f8455bb4a01845b3a0c5e7c33",
                    "accountId": account,
                    "accountNumber": "A00000001",
                    "invoiceNumber": "INV00000001",
                    "invoiceDate": "2026-11-01",
                    "dueDate": "2026-12-01",
                    "amount": Decimal("13200"),
                    "balance": Decimal("13200"),
                    "taxAmount": Decimal("1200"),
                    "status": "Posted",
                    "currency": "JPY",
                    "invoiceItems": [
                        {
                            "id": "8ad0823f8455bb4a01845b3a0c5e7c34",
                            "chargeName": "Seats",
                            "quantity": 10,
                            "chargeAmount": Decimal("12000"),
                            "taxAmount": Decimal("1200"),
                            "serviceStartDate": "2026-11-01",
                            "serviceEndDate": "2026-11-30",
                        }
                    ],
                },
            },
            "payments": {},
            "creditmemos": {},
        }
        self.tokens = set()
        self.by_key = {}

    def rate_limited(self, fault: Fault) -> Response:
        headers = {"RateLimit-Limit": "40", "RateLimit-Remaining": "0", "RateLimit-Reset": "1", **fault.headers}
        return json_response({"message": "Too many requests"}, 429, headers)

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1/accounts", self.create_account, methods=["POST"]),
            Route("/v1/accounts/{key}", self.get_account, methods=["GET", "PUT"]),
            Route("/v1/catalog/products", self.products, methods=["GET"]),
            Route("/v1/rateplan/{key}/productRatePlan", self.rate_plans, methods=["GET"]),
            Route("/v1/subscriptions", self.create_subscription, methods=["POST"]),
            Route("/v1/subscriptions/accounts/{key}", self.subscriptions, methods=["GET"]),
            Route("/v1/transactions/invoices/accounts/{key}", self.invoices, methods=["GET"]),
            Route("/v1/payments", self.create_payment, methods=["POST"]),
            Route("/v1/invoices/{key}/creditmemos", self.credit_memo_from_invoice, methods=["POST"]),
            Route("/v1/creditmemos", self.credit_memos, methods=["GET"]),
        ]

    # ------------------------------------------------------------------------------------- plumbing

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3599,
                "scope": "entity.1a2b",
                "jti": secrets.token_hex(8),
            }
        )

    def _denied(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.tokens:
            return None
        return failure(90000011, "This resource is protected, please sign in first", 401)

    async def _write(self, request: Request, make: Any) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        key = request.headers.get("idempotency-key")
        if key and key in self.by_key:
            return json_response(self.by_key[key])
        raw = await request.body()
        try:
            body = loads(raw) if raw else None
        except ValueError:
            return failure(50000090, "Malformed JSON in the request body")
        if not isinstance(body, dict):
            return failure(50000090, "The request body must be a JSON object")
        response: Response = make(body)
        if key and response.status_code == 200:
            answer = loads(bytes(response.body))
            if answer.get("success"):
                self.by_key[key] = answer
        return response

    def _account(self, key: str) -> dict[str, Any] | None:
        return next((a for a in self.data["accounts"].values() if key in (a["id"], a["accountNumber"])), None)

    def _page(self, request: Request, name: str, rows: list[Any]) -> Response:
        try:
            page = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("pageSize", "20"))
        except ValueError:
            return failure(50000020, "page and pageSize must be integers")
        if not 1 <= size <= 40 or page < 1:
            return failure(50000020, "pageSize must be between 1 and 40")
        body: dict[str, Any] = {name: rows[(page - 1) * size : page * size]}
        if page * size < len(rows):
            body["nextPage"] = (
                f"{request.url.scheme}://{request.url.netloc}{request.url.path}?page={page + 1}&pageSize={size}"
            )
        body["success"] = True
        return json_response(body)

    # --------------------------------------------------------------------------------------- objects

    async def create_account(self, request: Request) -> Response:
        def make(body: dict[str, Any]) -> Response:
            for required in ("name", "currency", "billToContact"):
                if not body.get(required):
                    return failure(53100320, f"'{required}' may not be null")
            if body["currency"] not in DECIMALS:
                return failure(53100020, f"Invalid value for currency: {body['currency']}")
            number = body.get("accountNumber") or f"A{self.next_number('account', start=2):08d}"
            if self._account(number):
                return failure(53100030, f"The account number {number} is invalid or already exists.")
            account = {**body, "id": _uid(), "accountNumber": number, "status": "Active"}
            self.data["accounts"][account["id"]] = account
            return json_response(
                {
                    "success": True,
                    "accountId": account["id"],
                    "accountNumber": number,
                    "billToContactId": _uid(),
                    "soldToContactId": _uid(),
                }
            )

        return await self._write(request, make)

    async def get_account(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        account = self._account(request.path_params["key"])
        if account is None:
            return failure(50000040, f"Cannot find entity by key: '{request.path_params['key']}'.")
        if request.method == "PUT":
            return await self._write(request, lambda body: self._update_account(account, body))
        basic = {k: account.get(k) for k in ("id", "accountNumber", "name", "status", "crmId", "currency")}
        body = {
            "basicInfo": basic,
            "billingAndPayment": {"billCycleDay": account.get("billCycleDay", 1), "currency": account["currency"]},
            "billToContact": account.get("billToContact"),
            "metrics": {
                "balance": sum(
                    (i["balance"] for i in self.data["invoices"].values() if i["accountId"] == account["id"]),
                    Decimal(0),
                )
            },
            "success": True,
        }
        return json_response(body)

    def _update_account(self, account: dict[str, Any], body: dict[str, Any]) -> Response:
        account.update({k: v for k, v in body.items() if k not in ("id", "accountNumber", "currency")})
        return json_response({"success": True})

    async def products(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        rows = list(self.data["products"].values())
        if _version(request) >= (230, 0):  # REST API version control: the rate plans become a URL to read them
            rows = [{**p, "productRatePlans": f"/v1/rateplan/{p['id']}/productRatePlan"} for p in rows]
        return self._page(request, "products", rows)

    async def rate_plans(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        key = request.path_params["key"]
        product = next((p for p in self.data["products"].values() if key in (p["id"], p["sku"])), None)
        if product is None:
            return failure(50000040, f"Cannot find entity by key: '{key}'.")
        return self._page(request, "productRatePlans", list(product["productRatePlans"]))

    async def create_subscription(self, request: Request) -> Response:
        def make(body: dict[str, Any]) -> Response:
            account = self._account(str(body.get("accountKey", "")))
            if account is None:
                return failure(53000040, f"Invalid value for field accountKey: {body.get('accountKey')}")
            if body.get("termType") not in ("TERMED", "EVERGREEN"):
                return failure(53000020, "termType must be TERMED or EVERGREEN")
            plans = body.get("subscribeToRatePlans") or []
            if not plans:
                return failure(53000320, "'subscribeToRatePlans' may not be empty")
            places = Decimal(1).scaleb(-DECIMALS[account["currency"]])
            mrr = Decimal(0)
            for plan in plans:
                found = self._rate_plan(str(plan.get("productRatePlanId")))
                if found is None:
                    return failure(53000040, f"Invalid product rate plan id {plan.get('productRatePlanId')}")
                for charge in found["productRatePlanCharges"]:
                    price = next((p["price"] for p in charge["pricing"] if p["currency"] == account["currency"]), None)
                    if price is None:
                        return failure(53000030, f"No {account['currency']} price for charge {charge['name']}")
                    overrides = {o.get("productRatePlanChargeId"): o for o in plan.get("chargeOverrides") or []}
                    quantity = Decimal(str(overrides.get(charge["id"], {}).get("quantity", 1)))
                    mrr += (price * quantity).quantize(places)
            number = f"A-S{self.next_number('subscription'):08d}"
            term = int(body.get("initialTerm", 12))
            subscription = {
                "id": _uid(),
                "subscriptionNumber": number,
                "accountId": account["id"],
                "accountNumber": account["accountNumber"],
                "status": "Active",
                "termType": body["termType"],
                "contractEffectiveDate": body.get("contractEffectiveDate"),
                "initialTerm": term,
                "autoRenew": bool(body.get("autoRenew", False)),
                "currency": account["currency"],
                "contractedMrr": mrr,
                "ratePlans": [{"productRatePlanId": p["productRatePlanId"]} for p in plans],
            }
            self.data["subscriptions"][subscription["id"]] = subscription
            return json_response(
                {
                    "success": True,
                    "subscriptionId": subscription["id"],
                    "subscriptionNumber": number,
                    "contractedMrr": mrr,
                    "totalContractedValue": mrr * term,
                }
            )

        return await self._write(request, make)

    def _rate_plan(self, plan_id: str) -> dict[str, Any] | None:
        for product in self.data["products"].values():
            for plan in product["productRatePlans"]:
                if plan["id"] == plan_id:
                    return dict(plan)
        return None

    async def subscriptions(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        account = self._account(request.path_params["key"])
        if account is None:
            return failure(50000040, f"Cannot find entity by key: '{request.path_params['key']}'.")
        rows = [s for s in self.data["subscriptions"].values() if s["accountId"] == account["id"]]
        return self._page(request, "subscriptions", rows)

    async def invoices(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        account = self._account(request.path_params["key"])
        if account is None:
            return failure(50000040, f"Cannot find entity by key: '{request.path_params['key']}'.")
        rows = [i for i in self.data["invoices"].values() if i["accountId"] == account["id"]]
        return self._page(request, "invoices", rows)

    async def create_payment(self, request: Request) -> Response:
        def make(body: dict[str, Any]) -> Response:
            account = self._account(str(body.get("accountId") or body.get("accountNumber") or ""))
            if account is None:
                return failure(50000040, "Cannot find entity by key: accountId.")
            currency = body.get("currency") or account["currency"]
            if currency != account["currency"]:
                return failure(50000030, f"The payment currency {currency} differs from the account's currency.")
            places = Decimal(1).scaleb(-DECIMALS[currency])
            try:
                amount = Decimal(str(body["amount"]))
            except (KeyError, ArithmeticError):
                return failure(50000020, "'amount' must be a number")
            if amount.as_tuple().exponent < places.as_tuple().exponent:  # type: ignore[operator]
                return failure(50000020, f"The amount has more decimal places than {currency} allows.")
            applied = Decimal(0)
            for part in body.get("invoices") or []:
                invoice = self.data["invoices"].get(str(part.get("invoiceId")))
                if invoice is None:
                    return failure(50000040, f"Invalid invoice id {part.get('invoiceId')}")
                share = Decimal(str(part.get("amount", 0)))
                if share > invoice["balance"]:
                    return failure(50000030, "The applied amount exceeds the invoice balance.")
                invoice["balance"] -= share
                applied += share
            if applied > amount:
                return failure(50000030, "The applied amount exceeds the payment amount.")
            number = f"P-{self.next_number('payment'):08d}"
            payment = {
                "id": _uid(),
                "number": number,
                "status": "Processed",
                "type": body.get("type", "External"),
                "accountId": account["id"],
                "amount": amount,
                "appliedAmount": applied,
                "unappliedAmount": amount - applied,
                "currency": currency,
                "effectiveDate": body.get("effectiveDate"),
            }
            self.data["payments"][payment["id"]] = payment
            return json_response({**payment, "success": True})

        return await self._write(request, make)

    def _invoice(self, key: str) -> dict[str, Any] | None:
        return next((i for i in self.data["invoices"].values() if key in (i["id"], i["invoiceNumber"])), None)

    async def credit_memo_from_invoice(self, request: Request) -> Response:
        invoice = self._invoice(request.path_params["key"])

        def make(body: dict[str, Any]) -> Response:
            if invoice is None:
                return failure(50000040, f"Cannot find entity by key: '{request.path_params['key']}'.")
            places = Decimal(1).scaleb(-DECIMALS[invoice["currency"]])
            items = {item.get("id"): item for item in invoice.get("invoiceItems", [])}
            amount = Decimal(0)
            for index, part in enumerate(body.get("items") or []):
                item = items.get(part.get("invoiceItemId"))
                if item is None:
                    return failure(53000040, f"items[{index}]: invalid invoiceItemId {part.get('invoiceItemId')}")
                share = Decimal(str(part.get("amount", 0)))
                if share.as_tuple().exponent < places.as_tuple().exponent:  # type: ignore[operator]
                    return failure(53000020, f"items[{index}]: more decimal places than {invoice['currency']} allows")
                if share > item["chargeAmount"]:
                    return failure(53000030, f"items[{index}]: the credit exceeds the charge amount")
                amount += share
            if amount <= 0:
                return failure(53000320, "'items' must credit a positive amount")
            applied = amount if body.get("autoApplyToInvoiceUponPosting") and body.get("autoPost") else Decimal(0)
            if applied > invoice["balance"]:
                applied = invoice["balance"]
            invoice["balance"] -= applied
            memo = {
                "id": _uid(),
                "number": f"CM{self.next_number('creditmemo'):08d}",
                "accountId": invoice["accountId"],
                "status": "Posted" if body.get("autoPost") else "Draft",
                "amount": amount,
                "appliedAmount": applied,
                "unappliedAmount": amount - applied,
                "currency": invoice["currency"],
                "referredInvoiceId": invoice["id"],
                "reasonCode": body.get("reasonCode", "Correcting invoice error"),
                "creditMemoDate": body.get("effectiveDate"),
            }
            self.data["creditmemos"][memo["id"]] = memo
            return json_response({**memo, "success": True})

        return await self._write(request, make)

    async def credit_memos(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        account = request.query_params.get("accountId")
        rows = [m for m in self.data["creditmemos"].values() if account is None or m["accountId"] == account]
        return self._page(request, "creditmemos", rows)


SIM = Zuora
