"""Dynamics 365 (Dataverse) simulator: the Web API (`/api/data/v9.2/`) and the Microsoft identity platform's
token endpoint (`/{tenant}/oauth2/v2.0/token`), as Microsoft Learn documents them.

- Auth: OpenID Connect discovery (`/{tenant}/v2.0/.well-known/openid-configuration`, MSAL's first call);
  OAuth 2.0 client credentials (`client_id`/`client_secret` in the form or HTTP Basic,
  `scope=<org>/.default`); API calls need the bearer token (401 with `WWW-Authenticate: Bearer …`).
- Entity sets: accounts, contacts, opportunities, products, salesorders (with `order_details` deep
  insert), invoices, quotes (`$expand=quote_details`), transactioncurrencies. Records carry `@odata.etag`
  (`W/"<version>"`), also the `ETag` header of a single read. Alternate keys address records:
  `accounts(accountnumber='ACC-1')`.
- Reads: `$select`, `$filter` (`field eq 'v'` joined by `and`), `$top`; paging by
  `Prefer: odata.maxpagesize=N` with `@odata.nextLink` (`$skiptoken`).
- Writes: POST answers 204 with `OData-EntityId` (201 with the record under
  `Prefer: return=representation`); PATCH updates or, without `If-Match`, upserts (the idempotent way to
  create by alternate key); `If-Match: *` refuses to create (404), a stale ETag is 412 (0x80060882).
- Metadata: `EntityDefinitions` (`$filter=LogicalName eq '…'`, `(LogicalName='…')`) with each table's
  `EntitySetName` and `PrimaryIdAttribute`, and no choice (picklist) columns: what Microsoft's Dataverse
  SDK reads before it writes.
- Errors: `{"error": {"code": "0x…", "message"}}`; the service protection limit is 429 with
  `Retry-After` and code 0x80072322.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

TENANT = "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
CLIENT_ID = "5b0c7e2a-1d34-4c56-9e78-0a1b2c3d4e5f"
CLIENT_SECRET = "demo-d365-client-secret"
API = "/api/data/v9.2"
SETS = {
    "accounts": "accountid",
    "contacts": "contactid",
    "products": "productid",
    "salesorders": "salesorderid",
    "salesorderdetails": "salesorderdetailid",
    "invoices": "invoiceid",
    "quotes": "quoteid",
    "opportunities": "opportunityid",
    "quotedetails": "quotedetailid",
    "transactioncurrencies": "transactioncurrencyid",
}
ALTERNATE_KEYS = {
    "accounts": "accountnumber",
    "contacts": "emailaddress1",
    "products": "productnumber",
    "salesorders": "ordernumber",
}
CURRENCY_IDS = {
    "USD": "a1b2c3d4-0000-4000-8000-000000000840",
    "EUR": "a1b2c3d4-0000-4000-8000-000000000978",
    "JPY": "a1b2c3d4-0000-4000-8000-000000000392",
    "KWD": "a1b2c3d4-0000-4000-8000-000000000414",
}
DECIMALS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


class Dynamics365(VendorSim):
    name = "dynamics365"

    def __init__(self, *, tenant: str = TENANT, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.token_requests = 0
        super().__init__()

    def seed(self) -> None:
        account = "0b4a3f1e-8c2d-4e5f-9a6b-7c8d9e0f1a2b"
        self.data = {name: {} for name in SETS}
        for code, currency_id in CURRENCY_IDS.items():
            self.data["transactioncurrencies"][currency_id] = {
                "transactioncurrencyid": currency_id,
                "isocurrencycode": code,
                "currencyprecision": DECIMALS[code],
                "versionnumber": 900,
            }
        self.data["accounts"][account] = {
            "accountid": account,
            "accountnumber": "ACC-1001",
            "name": "Fabrikam, Inc.",
            "emailaddress1": "ap@fabrikam.example",
            "address1_country": "US",
            "_transactioncurrencyid_value": CURRENCY_IDS["USD"],
            "versionnumber": 1000,
            "modifiedon": "2026-11-20T10:00:00Z",
        }
        self.data["products"]["6e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"] = {
            "productid": "6e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "productnumber": "SKU-100",
            "name": "Widget",
            "price": Decimal("10.50"),
            "versionnumber": 1001,
        }
        for number, (product_id, name, price) in {
            "WIDGET-42": ("6e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a42", "Widget", Decimal("1500")),
            "GADGET-43": ("6e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a43", "Gadget", Decimal("9900")),
        }.items():
            self.data["products"][product_id] = {
                "productid": product_id,
                "productnumber": number,
                "name": name,
                "price": price,
                "versionnumber": 1002,
            }
        quote = "7c2f9a10-5b3e-4d21-9f00-0000000000a1"
        self.data["quotes"][quote] = {
            "quoteid": quote,
            "quotenumber": "QUO-01001-K3L9",
            "name": "Kanto rollout",
            "statecode": 1,
            "_customerid_value": account,
            "_transactioncurrencyid_value": CURRENCY_IDS["KWD"],
            "totallineitemamount": Decimal("1279.750"),
            "discountamount": Decimal("25.000"),
            "totaldiscountamount": Decimal("89.000"),
            "totaltax": Decimal("0.000"),
            "totalamount": Decimal("1254.750"),
            "effectivefrom": "2026-12-01",
            "effectiveto": "2026-12-31",
            "versionnumber": 1500,
        }
        for line_no, (product, quantity, price, discount) in enumerate(
            (
                ("WIDGET-42", Decimal("100"), Decimal("4.125"), Decimal("64.000")),
                ("GADGET-43", Decimal("25"), Decimal("37.250"), Decimal("0.000")),
            ),
            start=1,
        ):
            detail = f"{quote[:-1]}{line_no + 1}"
            self.data["quotedetails"][detail] = {
                "quotedetailid": detail,
                "_quoteid_value": quote,
                "lineitemnumber": line_no,
                "productnumber": product,
                "quantity": quantity,
                "priceperunit": price,
                "manualdiscountamount": discount,
                "baseamount": quantity * price,
                "extendedamount": quantity * price - discount,
                "tax": Decimal("0.000"),
                "versionnumber": 1500 + line_no,
            }
        self.counters["version"] = 2000
        self.tokens = set()

    def rate_limited(self, fault: Fault) -> Response:
        message = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        return error(429, "0x80072322", message, {"Retry-After": "2", **fault.headers})

    def vendor_routes(self) -> list[BaseRoute]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route(API + "/{resource:path}", self.api, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]

    # ------------------------------------------------------------------------------------------ auth

    async def openid_configuration(self, request: Request) -> Response:
        """OpenID Connect discovery, where MSAL looks up the tenant's token endpoint."""
        tenant = request.path_params["tenant"]
        if tenant != self.tenant:
            description = f"AADSTS90002: Tenant '{tenant}' not found."
            return json_response({"error": "invalid_tenant", "error_description": description}, 400)
        root = f"{request.url.scheme}://{request.url.netloc}/{tenant}"
        return json_response(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "NA",
            }
        )

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        if request.path_params["tenant"] != self.tenant:
            return json_response(
                {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}, 400
            )
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type", "error_description": "AADSTS70003"}, 400)
        if client_id != self.client_id or client_secret != self.client_secret:
            description = "AADSTS7000215: Invalid client secret provided."
            return json_response({"error": "invalid_client", "error_description": description}, 401)
        if not str(form.get("scope", "")).endswith("/.default"):
            return json_response({"error": "invalid_scope", "error_description": "AADSTS1002012"}, 400)
        token = secrets.token_urlsafe(32)
        self.tokens.add(token)
        return json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    # ------------------------------------------------------------------------------------------- API

    def _etag(self, record: dict[str, Any]) -> str:
        return f'W/"{record["versionnumber"]}"'

    def _view(self, name: str, record: dict[str, Any], base: str, select: list[str] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": self._etag(record)}
        for key, value in record.items():
            if select is None or key in select or key == SETS[name]:
                out[key] = value
        return out

    def _find(self, name: str, key: str) -> dict[str, Any] | None:
        alternate = re.fullmatch(r"(\w+)='((?:[^']|'')*)'", key)
        if alternate:
            field, value = alternate[1], alternate[2].replace("''", "'")
            return next((r for r in self.data[name].values() if str(r.get(field)) == value), None)
        return self.data[name].get(key.strip("'"))

    async def api(self, request: Request) -> Response:
        if not self._authorised(request):
            return error(
                401,
                "0x80072560",
                "The user is not a member of the organization.",
                {
                    "WWW-Authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/{self.tenant}/oauth2/authorize"
                },
            )
        metadata = re.fullmatch(r"EntityDefinitions(?:\((.*?)\))?(/.+)?", request.path_params["resource"])
        if metadata is not None and request.method == "GET":
            return self._entity_definitions(request, metadata[1], metadata[2])
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", request.path_params["resource"])
        if match is None or match[1] not in SETS:
            return error(404, "0x8006088a", f"Resource not found for the segment '{request.path_params['resource']}'.")
        name, key = match[1], match[2]
        base = f"{request.url.scheme}://{request.url.netloc}{API}"
        if request.method == "GET":
            return self._get(request, name, key, base)
        raw = await request.body()
        try:
            body = loads(raw) if raw else {}
        except ValueError:
            return error(400, "0x80048d19", "Error identified in Payload provided by the user for Entity.")
        if request.method == "DELETE":
            record = self._find(name, key or "")
            if record is None:
                return error(404, "0x80040217", f"{name[:-1]} With Id = {key} Does Not Exist")
            del self.data[name][record[SETS[name]]]
            return Response(status_code=204)
        if not isinstance(body, dict):
            return error(400, "0x80048d19", "Error identified in Payload provided by the user for Entity.")
        if request.method == "POST":
            if key is not None:
                return error(405, "0x80060888", "POST is not supported on a single record.")
            return self._create(request, name, body, base, None)
        if key is None:
            return error(405, "0x80060888", "PATCH needs a record key.")
        record = self._find(name, key)
        if_match = request.headers.get("if-match")
        if record is None:
            if if_match == "*":
                return error(404, "0x80040217", f"{name[:-1]} With Id = {key} Does Not Exist")
            alternate = re.fullmatch(r"(\w+)='((?:[^']|'')*)'", key)
            seed = {alternate[1]: alternate[2].replace("''", "'")} if alternate else {SETS[name]: key.strip("'")}
            return self._create(request, name, {**body, **seed}, base, None)
        if if_match not in (None, "*") and if_match != self._etag(record):
            return error(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )
        if request.headers.get("if-none-match") == "*":
            return error(412, "0x80040237", "A record with matching key values already exists.")
        problem = self._apply(name, record, body)
        if problem is not None:
            return problem
        record["versionnumber"] = self.next_number("version")
        return Response(status_code=204, headers={"OData-EntityId": f"{base}/{name}({record[SETS[name]]})"})

    def _entity_definitions(self, request: Request, key: str | None, below: str | None) -> Response:
        """Table metadata, as much as clients read to find a table's entity set and primary key (and its
        choice columns: none here, every column is free text, a number or a lookup)."""
        base = f"{request.url.scheme}://{request.url.netloc}{API}"
        rows = [
            {
                "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse:{name}")),
                "LogicalName": id_field.removesuffix("id"),
                "SchemaName": id_field.removesuffix("id"),
                "EntitySetName": name,
                "PrimaryIdAttribute": id_field,
            }
            for name, id_field in SETS.items()
        ]
        if key is None and below is not None:
            return error(404, "0x80060888", f"Resource not found for the segment '{below.lstrip('/')}'.")
        if key is not None:
            by = re.fullmatch(r"LogicalName='(\w+)'", key)
            field, value = ("LogicalName", by[1]) if by else ("MetadataId", key.strip("'"))
            row = next((r for r in rows if r[field] == value), None)
            if row is None:
                return error(404, "0x80060888", f"Could not find an entity with key {key}.")
            if below == "/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata":
                return json_response({"@odata.context": f"{base}/$metadata#EntityDefinitions/Attributes", "value": []})
            if below is not None:
                return error(404, "0x80060888", f"Resource not found for the segment '{below.lstrip('/')}'.")
            return json_response({"@odata.context": f"{base}/$metadata#EntityDefinitions/$entity", **row})
        wanted = request.query_params.get("$filter", "")
        if wanted:
            test = re.fullmatch(r"\s*LogicalName\s+eq\s+'(\w+)'\s*", wanted)
            if test is None:
                return error(400, "0x80060888", f"The query parameter $filter is not supported: '{wanted}'")
            rows = [r for r in rows if r["LogicalName"] == test[1]]
        if request.query_params.get("$select"):
            keep = {"MetadataId", *(s.strip() for s in request.query_params["$select"].split(","))}
            rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
        return json_response({"@odata.context": f"{base}/$metadata#EntityDefinitions", "value": rows})

    def _get(self, request: Request, name: str, key: str | None, base: str) -> Response:
        params = request.query_params
        select = [s.strip() for s in params["$select"].split(",")] if params.get("$select") else None
        if key is not None:
            record = self._find(name, key)
            if record is None:
                return error(404, "0x80040217", f"{name[:-1]} With Id = {key} Does Not Exist")
            one = {"@odata.context": f"{base}/$metadata#{name}/$entity", **self._view(name, record, base, select)}
            if name == "quotes" and "quote_details" in params.get("$expand", ""):
                details = [d for d in self.data["quotedetails"].values() if d["_quoteid_value"] == record["quoteid"]]
                one["quote_details"] = [self._view("quotedetails", d, base, None) for d in details]
            return json_response(one, 200, {"ETag": self._etag(record), "OData-Version": "4.0"})
        records = list(self.data[name].values())
        for condition in re.split(r"\s+and\s+", params.get("$filter", "").strip()) if params.get("$filter") else []:
            test = re.fullmatch(r"(\w+)\s+eq\s+('(?:[^']|'')*'|[\w.-]+)", condition.strip())
            if test is None:
                return error(400, "0x80060888", f"The query parameter $filter is not supported: '{condition}'")
            value = test[2][1:-1].replace("''", "'") if test[2].startswith("'") else test[2]
            records = [r for r in records if str(r.get(test[1])) == value]
        if params.get("$top"):
            records = records[: int(params["$top"])]
        prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("prefer", ""))
        size = int(prefer[1]) if prefer else 5000
        start = int(params.get("$skiptoken", "0") or 0)
        page = records[start : start + size]
        body: dict[str, Any] = {
            "@odata.context": f"{base}/$metadata#{name}",
            "value": [self._view(name, r, base, select) for r in page],
        }
        headers = {"OData-Version": "4.0"}
        if prefer:
            headers["Preference-Applied"] = f"odata.maxpagesize={size}"
        if start + size < len(records):
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + size)
            text = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query.items())
            body["@odata.nextLink"] = f"{base}/{name}?{text}"
        return json_response(body, 200, headers)

    def _create(self, request: Request, name: str, body: dict[str, Any], base: str, _: Any) -> Response:
        id_field = SETS[name]
        alternate = ALTERNATE_KEYS.get(name)
        if (
            alternate
            and body.get(alternate)
            and any(r.get(alternate) == body[alternate] for r in self.data[name].values())
        ):
            return error(412, "0x80040237", f"A record with matching key values already exists ({alternate}).")
        record: dict[str, Any] = {id_field: str(body.get(id_field) or uuid.uuid4())}
        problem = self._apply(name, record, body)
        if problem is not None:
            return problem
        record["versionnumber"] = self.next_number("version")
        self.data[name][record[id_field]] = record
        entity_id = f"{base}/{name}({record[id_field]})"
        if "return=representation" in request.headers.get("prefer", ""):
            return json_response(self._view(name, record, base, None), 201, {"OData-EntityId": entity_id})
        return Response(status_code=204, headers={"OData-EntityId": entity_id})

    def _bind(self, value: Any, target: str) -> str | None:
        match = re.fullmatch(rf"/?{target}\((.*)\)", str(value))
        if match is None:
            return None
        record = self._find(target, match[1])
        return record[SETS[target]] if record else None

    def _apply(self, name: str, record: dict[str, Any], body: dict[str, Any]) -> Response | None:
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                field = key.split("@")[0]
                target = {
                    "customerid_account": "accounts",
                    "parentcustomerid_account": "accounts",
                    "transactioncurrencyid": "transactioncurrencies",
                    "productid": "products",
                    "salesorderid": "salesorders",
                }.get(field)
                bound = self._bind(value, target) if target else None
                if bound is None:
                    return error(400, "0x80040217", f"Entity for {key} with value {value} Does Not Exist")
                record[f"_{field.replace('_account', '')}_value"] = bound
            elif (key == "order_details" and name == "salesorders") or key.startswith("@") or key == SETS[name]:
                continue
            else:
                record[key] = value
        if name == "salesorders":
            return self._order(record, body)
        return None

    def _order(self, record: dict[str, Any], body: dict[str, Any]) -> Response | None:
        if "_customerid_value" not in record:
            return error(400, "0x80040203", "customerid: A customer is required for a sales order.")
        currency_id = record.get("_transactioncurrencyid_value") or CURRENCY_IDS["USD"]
        record["_transactioncurrencyid_value"] = currency_id
        code = self.data["transactioncurrencies"][currency_id]["isocurrencycode"]
        places = Decimal(1).scaleb(-DECIMALS[code])
        lines = body.get("order_details")
        if lines is None:
            return None
        total_lines = discount_total = tax_total = Decimal(0)
        for line in lines:
            detail: dict[str, Any] = {
                "salesorderdetailid": str(uuid.uuid4()),
                "_salesorderid_value": record["salesorderid"],
            }
            problem = self._apply("salesorderdetails", detail, line)
            if problem is not None:
                return problem
            quantity = Decimal(str(line.get("quantity", 1)))
            price = Decimal(str(line.get("priceperunit", 0)))
            discount = Decimal(str(line.get("manualdiscountamount", 0)))
            tax = Decimal(str(line.get("tax", 0)))
            amount = (quantity * price).quantize(places)
            detail.update(
                baseamount=amount, extendedamount=amount - discount + tax, versionnumber=self.next_number("version")
            )
            self.data["salesorderdetails"][detail["salesorderdetailid"]] = detail
            total_lines += amount - discount
            discount_total += discount
            tax_total += tax
        order_discount = Decimal(str(body.get("discountamount", 0)))
        record.update(
            totallineitemamount=total_lines,
            totaldiscountamount=discount_total + order_discount,
            totaltax=tax_total,
            totalamount=total_lines - order_discount + tax_total,
        )
        record.setdefault("ordernumber", f"ORD-{self.next_number('order', start=1001):05d}")
        return None


SIM = Dynamics365
