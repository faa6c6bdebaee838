"""SAP S/4HANA Cloud simulator: the OData v2 APIs `API_SALES_ORDER_SRV` (A_SalesOrder, A_SalesOrderItem)
and `API_BUSINESS_PARTNER` (A_BusinessPartner, A_Customer) under `/sap/opu/odata/sap/`, as SAP's API
Business Hub documents them.

- Auth: HTTP Basic (a communication user); 401 with `WWW-Authenticate: Basic realm="SAP …"`.
- CSRF: a GET with `x-csrf-token: Fetch` answers the token in that header and sets the session cookies
  (`SAP_SESSIONID_S4H_100`, `sap-usercontext`); a write needs the token of its session, else
  403 `x-csrf-token: Required` with the text "CSRF token validation failed". `expire_sessions()` forgets
  every session (the server's session timeout).
- `$metadata` (EDMX that `pyodata` reads), `d.results`, `d.__next` (server paging with `$skiptoken`,
  `page_size` records a page), `$top`/`$skip`/`$filter`/`$select`/`$expand`/`$inlinecount`.
- Writes: POST (deep insert of `to_Item`) answers 201 with the entity and a `Location`; PATCH/MERGE
  needs `If-Match` (428 without, 412 on a stale ETag) and answers 204. ETags come from
  `LastChangeDateTime` (`__metadata.etag` and the `ETag` header of a single entity).
- Idempotency: a repeated `Repeatability-Request-ID` (SAP's repeatable requests) gets the first answer.
- Errors: `{"error": {"code", "message": {"lang", "value"}, "innererror"}}`; rate limit: 429 with
  `Retry-After` (as SAP API Management answers).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims._odata_v2 import (
    EntitySet,
    Nav,
    ODataError,
    Prop,
    Service,
    etag_of,
    filter_records,
    from_wire,
    key_of,
    key_text,
    metadata,
    parse_resource,
    record_id,
    to_wire,
)
from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

ROOT = "/sap/opu/odata/sap"
USER = "COMM_USER_SYNCLINE"
PASSWORD = "demo-sap-password"
SESSION_COOKIE = "SAP_SESSIONID_S4H_100"
CSRF_FAILED = "CSRF token validation failed"


def _sales_order_service() -> Service:
    order = EntitySet(
        "A_SalesOrder",
        "A_SalesOrderType",
        ["SalesOrder"],
        [
            Prop("SalesOrder", max_length=10, label="Sales Document"),
            Prop("SalesOrderType", max_length=4, label="Sales Document Type"),
            Prop("SalesOrganization", max_length=4),
            Prop("DistributionChannel", max_length=2),
            Prop("OrganizationDivision", max_length=2),
            Prop("SoldToParty", max_length=10),
            Prop("PurchaseOrderByCustomer", max_length=35),
            Prop("TransactionCurrency", max_length=5),
            Prop("TotalNetAmount", "Edm.Decimal", precision=16, scale=3),
            Prop("TotalTaxAmount", "Edm.Decimal", precision=16, scale=3),
            Prop("OverallSDProcessStatus", max_length=1),
            Prop("CreationDate", "Edm.DateTime", precision=0),
            Prop("LastChangeDateTime", "Edm.DateTimeOffset", precision=7),
        ],
        [Nav("to_Item", "A_SalesOrderItem", True, (("SalesOrder", "SalesOrder"),))],
        etag="LastChangeDateTime",
    )
    item = EntitySet(
        "A_SalesOrderItem",
        "A_SalesOrderItemType",
        ["SalesOrder", "SalesOrderItem"],
        [
            Prop("SalesOrder", max_length=10),
            Prop("SalesOrderItem", max_length=6),
            Prop("Material", max_length=40),
            Prop("SalesOrderItemText", max_length=40),
            Prop("RequestedQuantity", "Edm.Decimal", precision=15, scale=3),
            Prop("RequestedQuantityUnit", max_length=3),
            Prop("NetAmount", "Edm.Decimal", precision=16, scale=3),
            Prop("TaxAmount", "Edm.Decimal", precision=16, scale=3),
            Prop("TransactionCurrency", max_length=5),
        ],
    )
    return Service("API_SALES_ORDER_SRV", {"A_SalesOrder": order, "A_SalesOrderItem": item})


def _business_partner_service() -> Service:
    partner = EntitySet(
        "A_BusinessPartner",
        "A_BusinessPartnerType",
        ["BusinessPartner"],
        [
            Prop("BusinessPartner", max_length=10),
            Prop("Customer", max_length=10),
            Prop("BusinessPartnerCategory", max_length=1),
            Prop("BusinessPartnerFullName", max_length=81),
            Prop("OrganizationBPName1", max_length=40),
            Prop("SearchTerm1", max_length=20),
            Prop("LastChangeDate", "Edm.DateTime", precision=0),
        ],
    )
    customer = EntitySet(
        "A_Customer",
        "A_CustomerType",
        ["Customer"],
        [
            Prop("Customer", max_length=10),
            Prop("CustomerName", max_length=80),
            Prop("Country", max_length=3),
            Prop("TaxNumber1", max_length=16),
            Prop("CustomerAccountGroup", max_length=4),
        ],
    )
    return Service("API_BUSINESS_PARTNER", {"A_BusinessPartner": partner, "A_Customer": customer})


class SapS4Hana(VendorSim):
    name = "sap_s4hana"

    def __init__(self, *, user: str = USER, password: str = PASSWORD, page_size: int = 50) -> None:
        self.user = user
        self.password = password
        self.page_size = page_size
        self.services = {s.name: s for s in (_sales_order_service(), _business_partner_service())}
        self.sessions: dict[str, str] = {}  # session cookie → CSRF token
        self.repeatable: dict[str, tuple[int, Any, dict[str, str]]] = {}
        super().__init__()

    def seed(self) -> None:
        stamp = "2026-11-02T08:15:00.1234567Z"
        self.data = {
            "A_BusinessPartner": {
                "17100001": {"BusinessPartner": "17100001", "Customer": "17100001", "BusinessPartnerCategory": "2",
                             "BusinessPartnerFullName": "Inlandskunde DE 1", "OrganizationBPName1": "Inlandskunde DE 1",
                             "SearchTerm1": "DE-1", "LastChangeDate": "2026-10-01T00:00:00Z"},
                "17100002": {"BusinessPartner": "17100002", "Customer": "17100002", "BusinessPartnerCategory": "2",
                             "BusinessPartnerFullName": "Acme GmbH", "OrganizationBPName1": "Acme GmbH",
                             "SearchTerm1": "ACME", "LastChangeDate": "2026-11-01T00:00:00Z"},
            },
            "A_Customer": {
                "17100001": {"Customer": "17100001", "CustomerName": "Inlandskunde DE 1", "Country": "DE",
                             "TaxNumber1": "DE123456789", "CustomerAccountGroup": "CUST"},
                "17100002": {"Customer": "17100002", "CustomerName": "Acme GmbH", "Country": "DE",
                             "TaxNumber1": "DE987654321", "CustomerAccountGroup": "CUST"},
            },
            "A_SalesOrder": {
                "1": {"SalesOrder": "1", "SalesOrderType": "OR", "SalesOrganization": "1710",
                      "DistributionChannel": "10", "OrganizationDivision": "00", "SoldToParty": "17100001",
                      "PurchaseOrderByCustomer": "PO-4711", "TransactionCurrency": "EUR",
                      "TotalNetAmount": Decimal("210.000"), "TotalTaxAmount": Decimal("39.900"),
                      "OverallSDProcessStatus": "A", "CreationDate": "2026-11-02T00:00:00Z",
                      "LastChangeDateTime": stamp},
            },
            "A_SalesOrderItem": {
                "1,10": {"SalesOrder": "1", "SalesOrderItem": "10", "Material": "TG11",
                         "SalesOrderItemText": "Trading Good 11", "RequestedQuantity": Decimal("2"),
                         "RequestedQuantityUnit": "PC", "NetAmount": Decimal("210.000"),
                         "TaxAmount": Decimal("39.900"), "TransactionCurrency": "EUR"},
            },
        }  # fmt: skip
        self.counters["A_SalesOrder"] = 1
        self.sessions = {}
        self.repeatable = {}

    def expire_sessions(self) -> None:
        """The server forgets every session and its CSRF token (a session timeout)."""
        self.sessions.clear()

    def rate_limited(self, fault: Fault) -> Response:
        error = ODataError(429, "TOO_MANY_REQUESTS", "Rate limit quota violation. Quota limit exceeded.")
        return json_response(error.body(), 429, {"Retry-After": "1", **fault.headers})

    def vendor_routes(self) -> list[BaseRoute]:
        methods = ["GET", "HEAD", "POST", "PATCH", "PUT", "MERGE", "DELETE"]
        return [
            Route(f"{ROOT}/{{service}}/", self.handle, methods=methods),
            Route(f"{ROOT}/{{service}}", self.handle, methods=methods),
            Route(f"{ROOT}/{{service}}/{{resource:path}}", self.handle, methods=methods),
        ]

    # ------------------------------------------------------------------------------------- protocol

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.user) and secrets.compare_digest(password, self.password)

    async def handle(self, request: Request) -> Response:
        if not self._authorised(request):
            realm = 'Basic realm="SAP NetWeaver Application Server [S4H/100]"'
            return Response("Logon failed", 401, {"WWW-Authenticate": realm}, "text/plain")
        service = self.services.get(request.path_params["service"].split(";")[0])
        if service is None:
            return json_response(ODataError(404, "/IWFND/MED/170", "No service found for namespace").body(), 404)
        resource = request.path_params.get("resource", "")
        headers: dict[str, str] = {"dataserviceversion": "2.0"}
        if request.method in ("GET", "HEAD") and request.headers.get("x-csrf-token", "").lower() == "fetch":
            session = secrets.token_hex(12)
            token = base64.b64encode(secrets.token_bytes(18)).decode()
            self.sessions[session] = token
            headers["x-csrf-token"] = token
            response = self._read(request, service, resource, headers)
            response.set_cookie(SESSION_COOKIE, session, path="/", httponly=True)
            response.set_cookie("sap-usercontext", "sap-client=100", path="/")
            return response
        if request.method in ("GET", "HEAD"):
            return self._read(request, service, resource, headers)
        cookie = request.cookies.get(SESSION_COOKIE)
        sent = request.headers.get("x-csrf-token")
        if cookie is None or sent is None or self.sessions.get(cookie) != sent:
            return Response(CSRF_FAILED, 403, {"x-csrf-token": "Required"}, "text/plain")
        repeat_id = request.headers.get("repeatability-request-id")
        if repeat_id and repeat_id in self.repeatable:
            status, body, first_headers = self.repeatable[repeat_id]
            return json_response(body, status, {**first_headers, "Repeatability-Result": "accepted"})
        try:
            response = await self._write(request, service, resource)
        except ODataError as exc:
            return json_response(exc.body(), exc.status)
        if repeat_id and response.status_code < 300:
            body = loads(bytes(response.body)) if response.body else None
            kept = {k: v for k, v in response.headers.items() if k.lower() in ("location", "etag")}
            self.repeatable[repeat_id] = (response.status_code, body, kept)
        return response

    def _read(self, request: Request, service: Service, resource: str, headers: dict[str, str]) -> Response:
        resource = resource.strip("/")
        if resource == "":
            document = {"d": {"EntitySets": list(service.sets)}}
            return json_response(document, 200, headers)
        if resource == "$metadata":
            return Response(metadata(service), 200, headers, "application/xml")
        try:
            return self._query(request, service, resource, headers)
        except ODataError as exc:
            return json_response(exc.body(), exc.status, headers)

    def _entity(self, service: Service, entity_set: EntitySet, record: dict[str, Any], base: str,
                expand: set[str], select: list[str] | None) -> dict[str, Any]:  # fmt: skip
        uri = f"{base}/{entity_set.name}({key_text(entity_set, record)})"
        meta: dict[str, Any] = {"id": uri, "uri": uri, "type": f"{service.name}.{entity_set.type_name}"}
        etag = etag_of(entity_set, record)
        if etag:
            meta["etag"] = etag
        out: dict[str, Any] = {"__metadata": meta}
        for prop in entity_set.props:
            if select is None or prop.name in select:
                out[prop.name] = to_wire(prop, record.get(prop.name))
        for nav in entity_set.navs:
            if nav.name in expand:
                target = service.sets[nav.target]
                children = [r for r in self._children(entity_set, nav, record)]
                out[nav.name] = {"results": [self._entity(service, target, c, base, set(), None) for c in children]}
            elif select is None or nav.name in select:
                out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
        return out

    def _children(self, entity_set: EntitySet, nav: Nav, record: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.data.get(nav.target, {}).values()
        return [r for r in rows if all(str(r.get(theirs)) == str(record.get(mine)) for mine, theirs in nav.link)]

    def _query(self, request: Request, service: Service, resource: str, headers: dict[str, str]) -> Response:
        name, keys, nav_name = parse_resource(resource)
        entity_set = service.sets.get(name)
        if entity_set is None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{name}'")
        base = f"{request.url.scheme}://{request.url.netloc}{ROOT}/{service.name}"
        params = request.query_params
        expand = {p.strip() for p in params.get("$expand", "").split(",") if p.strip()}
        select = [p.strip() for p in params["$select"].split(",")] if params.get("$select") else None
        rows = self.data.get(entity_set.name, {})
        if keys is not None:
            record = rows.get(key_of(entity_set, keys))
            if record is None:
                raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{resource}'")
            if nav_name is None:
                etag = etag_of(entity_set, record)
                if etag:
                    headers["ETag"] = etag
                return json_response(
                    {"d": self._entity(service, entity_set, record, base, expand, select)}, 200, headers
                )
            nav = next((n for n in entity_set.navs if n.name == nav_name), None)
            if nav is None:
                raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{nav_name}'")
            entity_set, records = service.sets[nav.target], self._children(entity_set, nav, record)
        else:
            records = list(rows.values())
        records = filter_records(records, params.get("$filter"))
        total = len(records)
        skip = int(params.get("$skiptoken") or params.get("$skip") or 0)
        top = int(params["$top"]) if params.get("$top") else None
        window = records[skip:]
        page = window[: min(self.page_size, top) if top is not None else self.page_size]
        body: dict[str, Any] = {"results": [self._entity(service, entity_set, r, base, expand, select) for r in page]}
        if params.get("$inlinecount") == "allpages":
            body["__count"] = str(total)
        remaining = len(window) if top is None else min(top, len(window))
        if remaining > len(page):
            query = {k: v for k, v in params.items() if k not in ("$skiptoken", "$skip")}
            if top is not None:
                query["$top"] = str(top - len(page))
            query["$skiptoken"] = str(skip + len(page))
            text = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query.items())
            body["__next"] = f"{base}/{resource}?{text}"
        return json_response({"d": body}, 200, headers)

    # --------------------------------------------------------------------------------------- writes

    async def _write(self, request: Request, service: Service, resource: str) -> Response:
        name, keys, nav_name = parse_resource(resource.strip("/"))
        entity_set = service.sets.get(name)
        if entity_set is None or nav_name is not None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{resource}'")
        raw = await request.body()
        try:
            body = loads(raw) if raw else {}
        except ValueError:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/004", "Malformed JSON in the request body") from None
        if request.method == "DELETE":
            raise ODataError(405, "/IWBEP/CM_MGW_RT/025", "Method 'DELETE' is not allowed for this entity")
        if not isinstance(body, dict):
            raise ODataError(400, "/IWBEP/CM_MGW_RT/004", "The request body must be a JSON object")
        base = f"{request.url.scheme}://{request.url.netloc}{ROOT}/{service.name}"
        if request.method == "POST":
            if keys is not None:
                raise ODataError(405, "/IWBEP/CM_MGW_RT/025", "POST is allowed on entity sets only")
            record: dict[str, Any] = self._create(service, entity_set, body)
            entity = self._entity(service, entity_set, record, base, {n.name for n in entity_set.navs}, None)
            headers = {"Location": entity["__metadata"]["uri"], "dataserviceversion": "2.0"}
            etag = etag_of(entity_set, record)
            if etag:
                headers["ETag"] = etag
            return json_response({"d": entity}, 201, headers)
        if keys is None:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/025", f"Method '{request.method}' needs an entity key")
        found = self.data.get(entity_set.name, {}).get(key_of(entity_set, keys))
        if found is None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{resource}'")
        record = found
        if entity_set.etag is not None:
            sent = request.headers.get("if-match")
            if not sent:
                raise ODataError(
                    428, "/IWBEP/CM_MGW_RT/062", "Precondition required: send If-Match with the entity's ETag"
                )
            if sent != "*" and sent != etag_of(entity_set, record):
                raise ODataError(
                    412, "/IWBEP/CM_MGW_RT/021", "The data has been changed in the meantime; ETag mismatch"
                )
        for field_name, value in body.items():
            prop = entity_set.prop(field_name)
            if prop is None:
                if any(n.name == field_name for n in entity_set.navs) or field_name == "__metadata":
                    continue
                raise ODataError(400, "/IWBEP/CM_MGW_RT/004", f"Property '{field_name}' is invalid")
            if field_name in entity_set.keys:
                continue
            record[field_name] = from_wire(prop, value)
        if entity_set.etag is not None:
            record[entity_set.etag] = _now()
        return Response(status_code=204, headers={"dataserviceversion": "2.0"})

    def _create(self, service: Service, entity_set: EntitySet, body: dict[str, Any]) -> dict[str, Any]:
        if entity_set.name != "A_SalesOrder":
            raise ODataError(405, "/IWBEP/CM_MGW_RT/025", f"Creating {entity_set.name} is not supported")
        record = self._values(entity_set, body, skip={"to_Item"})
        for required in (
            "SalesOrderType",
            "SalesOrganization",
            "DistributionChannel",
            "OrganizationDivision",
            "SoldToParty",
        ):
            if not record.get(required):
                raise ODataError(400, "V1/219", f"Enter a value for field {required}")
        if record["SoldToParty"] not in self.data["A_Customer"]:
            raise ODataError(400, "V1/390", f"Sold-to party {record['SoldToParty']} not maintained for sales area")
        items = body.get("to_Item") or []
        if isinstance(items, dict):
            items = items.get("results") or []
        if not isinstance(items, list) or not items:
            raise ODataError(400, "V1/555", "The sales document is not yet complete: enter an item")
        number = str(self.next_number("A_SalesOrder"))
        item_set = service.sets["A_SalesOrderItem"]
        currency = record.get("TransactionCurrency") or "EUR"
        total = Decimal(0)
        tax = Decimal(0)
        stored_items = []
        for index, raw in enumerate(items, start=1):
            if not isinstance(raw, dict):
                raise ODataError(400, "/IWBEP/CM_MGW_RT/004", "to_Item entries must be objects")
            item = self._values(item_set, raw)
            if not item.get("Material"):
                raise ODataError(400, "V1/219", "Enter a value for field Material")
            item.update(SalesOrder=number, SalesOrderItem=str(item.get("SalesOrderItem") or index * 10))
            item.setdefault("TransactionCurrency", currency)
            total += Decimal(str(item.get("NetAmount") or 0))
            tax += Decimal(str(item.get("TaxAmount") or 0))
            stored_items.append(item)
        for item in stored_items:
            self.data["A_SalesOrderItem"][record_id(item_set, item)] = item
        record.update(SalesOrder=number, TransactionCurrency=currency, OverallSDProcessStatus="A",
                      CreationDate=_now()[:10] + "T00:00:00Z", LastChangeDateTime=_now())  # fmt: skip
        record.setdefault("TotalNetAmount", total)
        record.setdefault("TotalTaxAmount", tax)
        self.data["A_SalesOrder"][number] = record
        return record

    def _values(self, entity_set: EntitySet, body: dict[str, Any], skip: set[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field_name, value in body.items():
            if field_name in (skip or set()) or field_name == "__metadata":
                continue
            prop = entity_set.prop(field_name)
            if prop is None:
                raise ODataError(400, "/IWBEP/CM_MGW_RT/004", f"Property '{field_name}' is invalid")
            out[field_name] = from_wire(prop, value)
        return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


SIM = SapS4Hana
