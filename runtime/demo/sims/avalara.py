"""Avalara AvaTax simulator: the REST v2 API (`/api/v2/...`) as Avalara's developer docs describe it.

- Every answer has an `x-correlation-id` header (the SDK reads it).
- Auth: HTTP Basic with the account id and license key (or a user name and password); a wrong one is
  401 `AuthenticationException`. `GET /api/v2/utilities/ping` says who is signed in.
- `POST /api/v2/transactions/create` (CreateTransactionModel) calculates tax per line from the
  ship-to address (small rate table: US states with state/county/city jurisdictions, a flat rate
  elsewhere), spreads a document `discount` over the lines marked `discounted`, rounds to the
  currency's decimals (JPY 0, KWD 3, else 2) and answers a TransactionModel (`totalAmount`,
  `totalTax`, `lines[].details[]`, `summary[]`); `commit: true` commits. A document `code` already
  used by the company is `DuplicateDocumentCode`;
  `POST /api/v2/transactions/createoradjust` ({createTransactionModel}) creates or adjusts instead — the
  idempotent way to record a document.
- `GET /api/v2/companies/{company}/transactions/{code}`, `POST …/{code}/commit`, `POST …/{code}/void`,
  `GET /api/v2/companies/{company}/transactions` (`$top`/`$skip`, `@recordsetCount`, `@nextLink`).
- Errors: `{"error": {"code", "message", "target", "details": [{code, number, message, description,
  faultCode, severity}]}}`; the rate limit is 429 `TooManyRequests` with `Retry-After`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

ACCOUNT_ID = "2000134479"
LICENSE_KEY = "ABCDEF0123456789"
COMPANY = "DEFAULT"
DECIMALS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "JPY": 0, "KWD": 3, "BHD": 3}
# ship-to region → [(jurisdiction name, type, rate)]
RATES: dict[str, list[tuple[str, str, Decimal]]] = {
    "WA": [
        ("WASHINGTON", "State", Decimal("0.065")),
        ("KING", "County", Decimal("0.0")),
        ("SEATTLE", "City", Decimal("0.0385")),
    ],
    "CA": [
        ("CALIFORNIA", "State", Decimal("0.06")),
        ("LOS ANGELES", "County", Decimal("0.0025")),
        ("LOS ANGELES", "City", Decimal("0.0225")),
    ],
    "OR": [],
}
FLAT = [("COUNTRY", "Country", Decimal("0.10"))]
TYPES = ("SalesOrder", "SalesInvoice", "ReturnOrder", "ReturnInvoice", "PurchaseOrder", "PurchaseInvoice")


def avatax_error(status: int, code: str, message: str, target: str = "Unknown", number: int = 0) -> Response:
    detail = {
        "code": code,
        "number": number,
        "message": message,
        "description": message,
        "faultCode": "Client",
        "helpLink": f"https://developer.avalara.com/avatax/errors/{code}",
        "severity": "Error",
    }
    body = {"error": {"code": code, "message": message, "target": target, "details": [detail]}}
    return json_response(body, status)


class Avalara(VendorSim):
    name = "avalara"

    def __init__(self, *, account_id: str = ACCOUNT_ID, license_key: str = LICENSE_KEY) -> None:
        self.account_id = account_id
        self.license_key = license_key
        super().__init__()

    def seed(self) -> None:
        self.data = {"transactions": {}}

    def app(self) -> ASGIApp:
        """Every AvaTax answer carries an `x-correlation-id` (the SDK's logger reads it)."""
        inner = super().app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    correlation = str(uuid.uuid4()).encode()
                    message["headers"] = [*message.get("headers", []), (b"x-correlation-id", correlation)]
                await send(message)

            await inner(scope, receive, send_with_id)

        return app

    def rate_limited(self, fault: Fault) -> Response:
        response = avatax_error(429, "TooManyRequests", "Too many requests; retry after the given time.")
        response.headers["Retry-After"] = fault.headers.get("Retry-After", "1")
        return response

    def vendor_routes(self) -> list[BaseRoute]:
        base = "/api/v2"
        return [
            Route(f"{base}/utilities/ping", self.ping, methods=["GET"]),
            Route(f"{base}/transactions/create", self.create, methods=["POST"]),
            Route(f"{base}/transactions/createoradjust", self.create_or_adjust, methods=["POST"]),
            Route(f"{base}/companies/{{company}}/transactions", self.list, methods=["GET"]),
            Route(f"{base}/companies/{{company}}/transactions/{{code}}", self.get, methods=["GET"]),
            Route(f"{base}/companies/{{company}}/transactions/{{code}}/commit", self.commit, methods=["POST"]),
            Route(f"{base}/companies/{{company}}/transactions/{{code}}/void", self.void, methods=["POST"]),
        ]

    # ------------------------------------------------------------------------------------------ auth

    def _user(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        ok = secrets.compare_digest(user, self.account_id) and secrets.compare_digest(key, self.license_key)
        return user if ok else None

    def _denied(self, request: Request) -> Response | None:
        if self._user(request) is None:
            return avatax_error(401, "AuthenticationException", "Authentication failed.", "HttpRequestHeaders", 34)
        return None

    async def ping(self, request: Request) -> Response:
        user = self._user(request)
        body: dict[str, Any] = {"version": "26.11.0", "authenticated": user is not None}
        if user is not None:
            body.update(
                authenticationType="AccountIdLicenseKey", authenticatedUserName=user, authenticatedAccountId=int(user)
            )
        return json_response(body)

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return loads(raw) if raw else None
        except ValueError:
            return None

    # ---------------------------------------------------------------------------------- transactions

    async def create(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        model = await self._body(request)
        if not isinstance(model, dict):
            return avatax_error(400, "ModelRequiredException", "A model is required.", "Unknown", 70)
        code = model.get("code")
        company = str(model.get("companyCode") or COMPANY)
        if code and f"{company}/{code}" in self.data["transactions"]:
            message = f"The document code {code} has already been used for this company and document type."
            return avatax_error(400, "DuplicateDocumentCode", message, "Code", 303)
        return self._record(model, company)

    async def create_or_adjust(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = await self._body(request)
        model = body.get("createTransactionModel") if isinstance(body, dict) else None
        if not isinstance(model, dict):
            return avatax_error(400, "ModelRequiredException", "createTransactionModel is required.", "Unknown", 70)
        company = str(model.get("companyCode") or COMPANY)
        existing = self.data["transactions"].get(f"{company}/{model.get('code')}")
        if existing is not None and existing["status"] == "Committed" and not model.get("commit"):
            message = "A committed transaction cannot be adjusted to uncommitted."
            return avatax_error(400, "CannotModifyLockedTransaction", message, "Code", 310)
        return self._record(model, company, adjust=existing)

    def _record(self, model: dict[str, Any], company: str, adjust: dict[str, Any] | None = None) -> Response:
        kind = model.get("type", "SalesOrder")
        if kind not in TYPES:
            return avatax_error(400, "InvalidEnumValue", f"The value '{kind}' is not valid for type.", "type", 7)
        for required in ("date", "customerCode"):
            if not model.get(required):
                return avatax_error(400, "ValueRequiredError", f"Field '{required}' is required.", required, 5)
        lines = model.get("lines")
        if not isinstance(lines, list) or not lines:
            return avatax_error(400, "MissingLine", "Transaction must have at least one line.", "lines", 16)
        currency = str(model.get("currencyCode") or "USD").upper()
        if currency not in DECIMALS:
            return avatax_error(400, "InvalidCurrencyCode", f"Currency code {currency} is invalid.", "currencyCode")
        places = Decimal(1).scaleb(-DECIMALS[currency])
        region, country = _ship_to(model)
        if region is None and country is None:
            return avatax_error(400, "AddressRangeError", "An address is required to calculate tax.", "addresses", 22)
        jurisdictions = RATES.get(region or "", FLAT) if country in (None, "US") else FLAT
        shares = _discount_shares(model, lines, places)
        if isinstance(shares, Response):
            return shares
        out_lines = []
        total = tax_total = taxable_total = exempt_total = Decimal(0)
        summary: dict[tuple[str, str], dict[str, Any]] = {}
        for index, line in enumerate(lines, start=1):
            try:
                amount = Decimal(str(line["amount"]))
                quantity = Decimal(str(line.get("quantity", 1)))
            except (KeyError, InvalidOperation, TypeError):
                return avatax_error(400, "ValueRequiredError", f"Line {index}: amount is required.", "lines", 5)
            discounted = amount - shares[index - 1]
            exempt = str(line.get("taxCode", "")).upper() == "NT" or bool(model.get("exemptionNo"))
            details = []
            line_tax = Decimal(0).quantize(places)
            for name, level, rate in jurisdictions:
                tax = (Decimal(0) if exempt else discounted * rate).quantize(places, ROUND_HALF_UP)
                line_tax += tax
                details.append(
                    {
                        "jurisName": name,
                        "jurisType": level,
                        "rate": rate,
                        "tax": tax,
                        "taxableAmount": Decimal(0) if exempt else discounted,
                        "taxName": f"{name} {level} TAX",
                        "taxType": "Sales",
                    }
                )
                entry = summary.setdefault(
                    (name, level),
                    {"jurisName": name, "jurisType": level, "rate": rate, "taxable": Decimal(0), "tax": Decimal(0)},
                )
                entry["taxable"] += Decimal(0) if exempt else discounted
                entry["tax"] += tax
            out_lines.append(
                {
                    "id": self.next_number("line", start=10000),
                    "lineNumber": str(line.get("number", index)),
                    "itemCode": line.get("itemCode"),
                    "description": line.get("description"),
                    "quantity": quantity,
                    "lineAmount": discounted,
                    "discountAmount": amount - discounted,
                    "taxableAmount": Decimal(0) if exempt else discounted,
                    "exemptAmount": discounted if exempt else Decimal(0),
                    "tax": line_tax,
                    "taxCalculated": line_tax,
                    "taxCode": line.get("taxCode", "P0000000"),
                    "details": details,
                }
            )
            total += discounted
            tax_total += line_tax
            taxable_total += Decimal(0) if exempt else discounted
            exempt_total += discounted if exempt else Decimal(0)
        code = str(model.get("code") or secrets.token_hex(8))
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        transaction = {
            "id": adjust["id"] if adjust else self.next_number("transaction", start=85000000),
            "code": code,
            "companyId": 7654321,
            "date": model["date"],
            "type": kind,
            "status": "Committed" if model.get("commit") else ("Saved" if kind.endswith("Invoice") else "Temporary"),
            "customerCode": model["customerCode"],
            "currencyCode": currency,
            "purchaseOrderNo": model.get("purchaseOrderNo"),
            "totalAmount": total,
            "totalDiscount": sum((ln["discountAmount"] for ln in out_lines), Decimal(0)),
            "totalExempt": exempt_total,
            "totalTaxable": taxable_total,
            "totalTax": tax_total,
            "totalTaxCalculated": tax_total,
            "adjustmentReason": "Other" if adjust else "NotAdjusted",
            "version": (adjust["version"] + 1) if adjust else 1,
            "modifiedDate": now,
            "lines": out_lines,
            "summary": [
                {
                    "country": country or "US",
                    "region": region or "",
                    "jurisType": s["jurisType"],
                    "jurisName": s["jurisName"],
                    "taxName": f"{s['jurisName']} {s['jurisType']} TAX",
                    "rate": s["rate"],
                    "taxable": s["taxable"],
                    "tax": s["tax"],
                    "taxCalculated": s["tax"],
                }
                for s in summary.values()
            ],
        }
        if kind.endswith("Order"):  # orders are estimates: AvaTax does not keep them
            return json_response(transaction, 201)
        self.data["transactions"][f"{company}/{code}"] = transaction
        return json_response(transaction, 201)

    def _find(self, request: Request) -> dict[str, Any] | None:
        key = f"{request.path_params['company']}/{request.path_params['code']}"
        found: dict[str, Any] | None = self.data["transactions"].get(key)
        return found

    async def get(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        transaction = self._find(request)
        if transaction is None:
            code = request.path_params["code"]
            return avatax_error(404, "EntityNotFoundError", f"Document with code '{code}' not found.", "Code", 4)
        return json_response(transaction)

    async def commit(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        transaction = self._find(request)
        if transaction is None:
            code = request.path_params["code"]
            return avatax_error(404, "EntityNotFoundError", f"Document with code '{code}' not found.", "Code", 4)
        body = await self._body(request)
        if isinstance(body, dict) and body.get("commit") is True:
            transaction["status"] = "Committed"
        return json_response(transaction)

    async def void(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        transaction = self._find(request)
        if transaction is None:
            code = request.path_params["code"]
            return avatax_error(404, "EntityNotFoundError", f"Document with code '{code}' not found.", "Code", 4)
        transaction["status"] = "Cancelled"
        return json_response(transaction)

    async def list(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        company = request.path_params["company"]
        rows = [t for key, t in self.data["transactions"].items() if key.partition("/")[0] == company]
        top = int(request.query_params.get("$top", "1000"))
        skip = int(request.query_params.get("$skip", "0"))
        body: dict[str, Any] = {"@recordsetCount": len(rows), "value": rows[skip : skip + top]}
        if skip + top < len(rows):
            body["@nextLink"] = f"/api/v2/companies/{company}/transactions?$top={top}&$skip={skip + top}"
        return json_response(body)


def _discount_shares(model: dict[str, Any], lines: list[Any], places: Decimal) -> list[Decimal] | Response:
    """The document `discount` spread over the lines marked `discounted: true` in proportion to their
    amounts (each share rounded to the currency; the last discounted line takes the remainder)."""
    shares = [Decimal(0)] * len(lines)
    try:
        discount = Decimal(str(model.get("discount") or 0))
        amounts = [Decimal(str(line.get("amount", 0))) if isinstance(line, dict) else Decimal(0) for line in lines]
    except InvalidOperation:
        return avatax_error(400, "InvalidDecimal", "discount and line amounts must be numbers.", "discount")
    marked = [i for i, line in enumerate(lines) if isinstance(line, dict) and line.get("discounted")]
    if not discount:
        return shares
    base = sum((amounts[i] for i in marked), Decimal(0))
    if not marked or base <= 0 or discount > base:
        message = "A document discount needs lines marked discounted whose amounts cover it."
        return avatax_error(400, "InvalidDiscount", message, "discount")
    left = discount
    for i in marked[:-1]:
        shares[i] = (discount * amounts[i] / base).quantize(places, ROUND_HALF_UP)
        left -= shares[i]
    shares[marked[-1]] = left
    return shares


def _ship_to(model: dict[str, Any]) -> tuple[str | None, str | None]:
    addresses = model.get("addresses") or {}
    if not isinstance(addresses, dict):
        return None, None
    address = addresses.get("shipTo") or addresses.get("singleLocation") or {}
    if not isinstance(address, dict) or not (address.get("region") or address.get("country")):
        return None, None
    country = str(address.get("country") or "US").upper()
    return (str(address["region"]).upper() if address.get("region") else None), country


SIM = Avalara
