"""A Salesforce REST API simulator (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta), enough
for the `salesforce` preset and the `simple-salesforce` package pointed at it.

- sign-in: `POST /services/oauth2/token` with the OAuth 2.0 JWT bearer grant; the assertion is verified
  with PyJWT against the connected app's registered public key (RS256, `iss` = consumer key, `sub` = a
  known user, `aud` = the login URL, `exp` at most 3 minutes ahead); answers `access_token` and
  `instance_url`, or `{"error": "invalid_grant", "error_description": …}`;
- data: `/services/data/v{version}/query?q=SOQL` (a small SOQL subset: `SELECT fields FROM Object
  [WHERE Field = 'value'] [LIMIT n]`), paged by `nextRecordsUrl` (batch size from
  `Sforce-Query-Options: batchSize=N`, default 2000); `sobjects/{Object}` create, `sobjects/{Object}/{id}`
  get / update (PATCH, 204) / delete, `sobjects/{Object}/{ExternalIdField}/{value}` upsert (201 created,
  204 updated);
- errors: a list of `{"message", "errorCode", "fields"}` — INVALID_SESSION_ID 401, NOT_FOUND 404,
  REQUIRED_FIELD_MISSING 400, MALFORMED_QUERY 400, REQUEST_LIMIT_EXCEEDED 403 (the org's API limit);
  every answer carries `Sforce-Limit-Info: api-usage=n/15000`.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.base import Fault, VendorSim, json_response
from runtime.expr import loads

CONSUMER_KEY = "3MVG9syncline.sim.consumer.key"
USERNAME = "integration@acme.example"
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
API_LIMIT = 15000
PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006", "Product2": "01t", "Order": "801"}
REQUIRED = {"Account": ("Name",), "Contact": ("LastName",), "Opportunity": ("Name", "StageName", "CloseDate"),
            "Product2": ("Name",), "Order": ("AccountId", "EffectiveDate", "Status")}  # fmt: skip
_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<field>\w+)\s*=\s*'(?P<value>[^']*)')?(?:\s+ORDER\s+BY\s+\w+(?:\s+(?:ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE,
)


def new_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair (private PEM, public PEM), as for a connected app's certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        body["fields"] = fields
    return json_response([body], status)


class SalesforceSim(VendorSim):
    name = "salesforce"
    objects: dict[str, str] = PREFIXES
    required: dict[str, tuple[str, ...]] = REQUIRED

    def __init__(self, public_key: str | None = None) -> None:
        self.private_key, generated = new_key_pair() if public_key is None else ("", public_key)
        self.public_key = generated
        self.tokens: set[str] = set()
        self.api_usage = 0
        super().__init__()

    def seed(self) -> None:
        self.data = {name: {} for name in self.objects}
        self.api_usage = 0
        for number in range(1, 6):
            self._store("Account", {"Name": f"Acme {number}", "AccountNumber": f"A-{number}", "CurrencyIsoCode": "EUR"})
        self._store("Contact", {"LastName": "Lovelace", "FirstName": "Ada", "AccountId": self._id("Account", 1)})
        self._store("Opportunity", {"Name": "Acme 1 renewal", "StageName": "Closed Won", "CloseDate": "2026-11-30",
                                    "AccountId": self._id("Account", 1), "Amount": 12000})  # fmt: skip

    def _id(self, sobject: str, number: int) -> str:
        return f"{self.objects[sobject]}5g00000{number:08d}AAA"[:18]

    def _store(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        number = self.counters[sobject] = self.counters.get(sobject, 0) + 1
        ident = self._id(sobject, number)
        record = {"Id": ident, **fields}
        self.data[sobject][ident] = record
        return record

    def _version_url(self, request: Request) -> str:
        return f"/services/data/v{request.path_params['version']}"

    def _shown(self, sobject: str, record: dict[str, Any], request: Request, fields: list[str] | None = None) -> Any:
        url = f"{self._version_url(request)}/sobjects/{sobject}/{record['Id']}"
        chosen = {k: record.get(k) for k in fields} if fields else dict(record)
        return {"attributes": {"type": sobject, "url": url}, **chosen}

    def rate_limited(self, fault: Fault) -> Response:
        return errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def _answer(self, value: Any, status: int = 200) -> Response:
        headers = {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{API_LIMIT}"}
        if status == 204:
            return Response(status_code=204, headers=headers)
        return json_response(value, status, headers)

    # ------------------------------------------------------------------------------------------ auth

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400
            )
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=[*AUDIENCES, self.login_url],
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            return json_response({"error": "invalid_grant", "error_description": "expired authorization code"}, 400)
        except jwt.InvalidTokenError as exc:
            return json_response({"error": "invalid_grant", "error_description": f"invalid assertion: {exc}"}, 400)
        if claims["iss"] != CONSUMER_KEY:
            return json_response({"error": "invalid_client_id", "error_description": "client identifier invalid"}, 400)
        if claims["sub"] != USERNAME:
            return json_response(
                {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}, 400
            )
        if claims["exp"] - time.time() > 300:
            return json_response({"error": "invalid_grant", "error_description": "assertion lifetime too long"}, 400)
        token = f"00D5g000000SIM!{self.next_number('tokens'):06d}"
        self.tokens.add(token)
        return json_response(
            {"access_token": token, "instance_url": self.login_url, "token_type": "Bearer", "scope": "api",
             "id": f"{self.login_url}/id/00D5g000000SIM/0055g000000USR", "issued_at": str(int(time.time() * 1000))}
        )  # fmt: skip

    @property
    def login_url(self) -> str:
        return self.url if self.server is not None else "http://127.0.0.1"

    def _guard(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.tokens:
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.api_usage += 1
        if self.api_usage > API_LIMIT:
            return errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return None

    # --------------------------------------------------------------------------------------- handlers

    async def query(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        cursor = request.path_params.get("cursor")
        if cursor is not None:
            soql, _, offset_text = cursor.rpartition("-")
            text = self.cursors.get(soql)
            if text is None or not offset_text.isdigit():
                return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            offset = int(offset_text)
        else:
            text = request.query_params.get("q", "")
            offset = 0
        match = _SOQL.match(text)
        if match is None or match["object"] not in self.data:
            what = match["object"] if match else text[:40]
            return errors(400, "MALFORMED_QUERY", f"sObject type '{what}' is not supported or the query is malformed")
        sobject = match["object"]
        rows = list(self.data[sobject].values())
        if match["field"]:
            rows = [r for r in rows if str(r.get(match["field"])) == match["value"]]
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        fields = [f.strip() for f in match["fields"].split(",")]
        options = request.headers.get("sforce-query-options", "")
        size = int(m[1]) if (m := re.search(r"batchSize=(\d+)", options)) else 2000
        page = rows[offset : offset + size]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + size >= len(rows),
            "records": [self._shown(sobject, r, request, fields) for r in page],
        }
        if not body["done"]:
            locator = f"01g5g{len(self.cursors):013d}"
            self.cursors[locator] = text
            body["nextRecordsUrl"] = f"{self._version_url(request)}/query/{locator}-{offset + size}"
        return self._answer(body)

    async def create(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        sobject = request.path_params["sobject"]
        if sobject not in self.data:
            return errors(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
        fields = loads(await request.body() or b"{}")
        missing = [name for name in self.required.get(sobject, ()) if not fields.get(name)]
        if missing:
            return errors(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        record = self._store(sobject, fields)
        return self._answer({"id": record["Id"], "success": True, "errors": []}, 201)

    async def record(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        sobject, ident = request.path_params["sobject"], request.path_params["id"]
        record = self.data.get(sobject, {}).get(ident)
        if record is None:
            return errors(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            return self._answer(self._shown(sobject, record, request))
        if request.method == "DELETE":
            del self.data[sobject][ident]
            return self._answer(None, 204)
        record.update(loads(await request.body() or b"{}"))
        return self._answer(None, 204)

    async def upsert(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        sobject, field, value = (request.path_params[k] for k in ("sobject", "field", "value"))
        if sobject not in self.data:
            return errors(404, "NOT_FOUND", f"The requested resource does not exist: {sobject}")
        fields = loads(await request.body() or b"{}")
        found = [r for r in self.data[sobject].values() if str(r.get(field)) == value]
        if len(found) > 1:
            return errors(300, "MULTIPLE_CHOICES", f"more than one record has {field} = {value}")
        if found:
            found[0].update(fields)
            return self._answer(None, 204)
        missing = [name for name in self.required.get(sobject, ()) if not fields.get(name)]
        if missing:
            return errors(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        record = self._store(sobject, {**fields, field: value})
        return self._answer({"id": record["Id"], "success": True, "errors": [], "created": True}, 201)

    def reset(self) -> None:
        self.cursors: dict[str, str] = {}
        super().reset()

    def vendor_routes(self) -> list[BaseRoute]:
        base = "/services/data/v{version}"
        return [
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route(base + "/query", self.query, methods=["GET"]),
            Route(base + "/query/{cursor}", self.query, methods=["GET"]),
            Route(base + "/sobjects/{sobject}", self.create, methods=["POST"]),
            Route(base + "/sobjects/{sobject}/{id}", self.record, methods=["GET", "PATCH", "DELETE"]),
            Route(base + "/sobjects/{sobject}/{field}/{value}", self.upsert, methods=["PATCH"]),
        ]


SIM = SalesforceSim
