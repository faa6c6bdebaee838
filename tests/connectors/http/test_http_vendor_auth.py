"""OAuth 1.0a (NetSuite TBA), the OAuth 2.0 JWT bearer grant (Salesforce) and SAP's CSRF token handshake,
each checked by a real local server with an independent verifier: oauthlib's server-side
`ResourceEndpoint` for the OAuth 1.0a signatures, PyJWT with a freshly generated RSA key for the
assertions. Secrets never reach error messages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import RequestValidator, ResourceEndpoint

from runtime.connector_api import CallRequest, ConnectorError
from tests.connectors.http.http_target import (
    FakeClock,
    Reply,
    Seen,
    call_once,
    json_reply,
    make_connector,
    run,
)

# ------------------------------------------------------------------------------------- OAuth 1.0a

CONSUMER_KEY = "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4"
CONSUMER_SECRET = "d6d9a8b1c7e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7"
TOKEN_ID = "2c6a3b9bc0a2b1e4f5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8"
TOKEN_SECRET = "f1e2d3c4b5a6978877665544332211ffeeddccbbaa99887766554433221100ab"
REALM = "1234567_SB1"


class NetSuiteValidator(RequestValidator):
    """What a NetSuite account knows: one integration record, one token, its account id as realm."""

    def __init__(self) -> None:
        super().__init__()
        self.realms_seen: list[list[str]] = []
        self.nonces: set[str] = set()

    enforce_ssl = False
    client_key_length = (20, 64)
    access_token_length = (20, 64)
    nonce_length = (20, 64)
    allowed_signature_methods = ("HMAC-SHA256",)
    dummy_client = "x" * 64
    dummy_access_token = "y" * 64

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == CONSUMER_KEY

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return token == TOKEN_ID

    def validate_timestamp_and_nonce(
        self, client_key: str, timestamp: str, nonce: str, request: Any, **kw: Any
    ) -> bool:
        if nonce in self.nonces:
            return False  # a replay
        self.nonces.add(nonce)
        return True

    def validate_realms(self, client_key: str, token: str, request: Any, uri: Any = None, realms: Any = None) -> bool:
        self.realms_seen.append([request.realm])
        return bool(request.realm == REALM)

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return CONSUMER_SECRET

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return TOKEN_SECRET


class NetSuite:
    """A resource server that answers 401 unless oauthlib verifies the request's OAuth 1.0a signature."""

    def __init__(self) -> None:
        self.validator = NetSuiteValidator()
        self.endpoint = ResourceEndpoint(self.validator)
        self.base = ""

    def __call__(self, seen: Seen) -> Reply:
        headers = {name.title(): value for name, value in seen.headers.items()}
        valid, _request = self.endpoint.validate_protected_resource_request(
            self.base + seen.target, seen.method, seen.body.decode() or None, headers
        )
        if not valid:
            return json_reply({"title": "Invalid login attempt."}, 401)
        return json_reply({"ok": True, "method": seen.method})


def oauth1_config(**extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth1",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "token": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
        "realm": REALM,
        **extra,
    }


NETSUITE_OPERATIONS: dict[str, dict[str, Any]] = {
    "query": {
        "method": "GET",
        "path": "/services/rest/record/v1/customer",
        "query": {"q": 'companyName START_WITH "Acme & Co"', "limit": 5, "tags": ["a b", "ü"]},
    },
    "create": {
        "method": "POST",
        "path": "/services/rest/record/v1/salesOrder?expandSubResources=true",
        "body": {"entity": {"id": "107"}, "item": {"items": [{"item": {"id": "9"}, "quantity": 2}]}},
    },
    "form": {
        "method": "POST",
        "path": "/app/site/hosting/restlet.nl",
        "form": {"script": 12, "deploy": "1 2", "x": "&="},
    },
}


def test_oauth1_signatures_verify_with_oauthlib_for_query_json_and_form_requests(serve) -> None:
    netsuite = NetSuite()
    server = serve(netsuite)
    netsuite.base = server.url
    connector = make_connector(server.url, auth=oauth1_config(), operations=NETSUITE_OPERATIONS)

    async def scenario() -> list[Any]:
        try:
            return [(await connector.call(CallRequest(name, {}))).output for name in ("query", "create", "form")]
        finally:
            await connector.aclose()

    assert run(scenario()) == [
        {"ok": True, "method": "GET"},
        {"ok": True, "method": "POST"},
        {"ok": True, "method": "POST"},
    ]
    assert netsuite.validator.realms_seen == [[REALM]] * 3
    query, create, form = server.requests
    assert query.query["q"] == ['companyName START_WITH "Acme & Co"'] and query.query["tags"] == ["a b", "ü"]
    assert create.json()["entity"] == {"id": "107"} and create.query == {"expandSubResources": ["true"]}
    assert parse_qs(form.body.decode()) == {"script": ["12"], "deploy": ["1 2"], "x": ["&="]}
    authorization = query.headers["authorization"]
    assert authorization.startswith('OAuth realm="1234567_SB1"')
    assert 'oauth_signature_method="HMAC-SHA256"' in authorization and 'oauth_version="1.0"' in authorization
    assert CONSUMER_SECRET not in authorization and TOKEN_SECRET not in authorization
    assert len(netsuite.validator.nonces) == 3  # a fresh nonce on every request


def test_oauth1_form_body_is_signed_and_json_body_is_not(serve) -> None:
    """A form body's parameters are in the signature base string (RFC 5849 3.4.1.3.1), a JSON body's are not:
    the verifier refuses a signature when the form body is changed in transit, not when the JSON body is."""
    netsuite = NetSuite()

    def tampering(seen: Seen) -> Reply:
        if seen.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            seen.body = seen.body.replace(b"script=12", b"script=13")
        else:
            seen.body = seen.body.replace(b'"107"', b'"108"')
        return netsuite(seen)

    server = serve(tampering)
    netsuite.base = server.url
    connector = make_connector(server.url, auth=oauth1_config(), operations=NETSUITE_OPERATIONS)
    assert run(call_once(connector, "create")).output == {"ok": True, "method": "POST"}
    connector = make_connector(server.url, auth=oauth1_config(), operations=NETSUITE_OPERATIONS)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(connector, "form"))
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "wrong",
    [{"token_secret": "wrong-token-secret-0000000000000"}, {"realm": "7654321"}, {"consumer_secret": "nope-0001"}],
)
def test_oauth1_wrong_credentials_or_realm_are_refused_and_secrets_stay_out_of_the_error(serve, wrong) -> None:
    netsuite = NetSuite()
    server = serve(netsuite)
    netsuite.base = server.url
    connector = make_connector(server.url, auth=oauth1_config(**wrong), operations=NETSUITE_OPERATIONS)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(connector, "query"))
    assert caught.value.status == 401 and caught.value.error_class == "fatal"
    text = str(caught.value) + repr(caught.value.body)
    for secret in (CONSUMER_SECRET, TOKEN_SECRET, *wrong.values()):
        if "secret" in secret or "nope" in secret:
            assert secret not in text


# ----------------------------------------------------------------------------------- JWT bearer


def rsa_pem() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


PEM, PUBLIC_KEY = rsa_pem()
ISSUER = "3MVG9consumer.key.of.the.connected.app"
SUBJECT = "integration@example.com"
AUDIENCE = "https://login.salesforce.com"


class Salesforce:
    """Token endpoint that verifies the RS256 assertion with PyJWT, and an API taking only issued tokens."""

    def __init__(self, public_key: Any = PUBLIC_KEY) -> None:
        self.public_key = public_key
        self.claims: list[dict[str, Any]] = []
        self.issued: list[str] = []
        self.valid: set[str] = set()

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/services/oauth2/token":
            form = parse_qs(seen.body.decode())
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                return json_reply({"error": "unsupported_grant_type"}, 400)
            try:
                claims = jwt.decode(
                    form["assertion"][0],
                    self.public_key,
                    algorithms=["RS256"],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"require": ["iss", "sub", "aud", "exp", "iat"]},
                )
            except jwt.PyJWTError as exc:
                return json_reply({"error": "invalid_grant", "error_description": str(exc)}, 400)
            if claims["sub"] != SUBJECT:
                return json_reply({"error": "invalid_grant", "error_description": "user"}, 400)
            self.claims.append(claims)
            token = f"00D-session-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            return json_reply(
                {"access_token": token, "instance_url": "https://x.my.salesforce.com", "token_type": "Bearer"}
            )
        bearer = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.valid:
            return json_reply([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        return json_reply({"totalSize": 0, "records": []})


def jwt_config(**extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_jwt_bearer",
        "token_url": "/services/oauth2/token",
        "issuer": ISSUER,
        "subject": SUBJECT,
        "audience": AUDIENCE,
        "private_key": PEM,
        **extra,
    }


def test_jwt_bearer_assertion_verifies_with_pyjwt_and_the_token_is_cached(serve) -> None:
    salesforce = Salesforce()
    server = serve(salesforce)
    connector = make_connector(server.url, auth=jwt_config())

    async def scenario() -> None:
        try:
            for _ in range(3):
                assert (await connector.call(CallRequest("get", {}))).output == {"totalSize": 0, "records": []}
        finally:
            await connector.aclose()

    run(scenario())
    assert salesforce.issued == ["00D-session-1"]
    (claims,) = salesforce.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ISSUER, SUBJECT, AUDIENCE)
    assert claims["exp"] - claims["iat"] == 180  # lifetime default: Salesforce's 3 minutes


def test_jwt_bearer_token_is_refreshed_once_on_401(serve) -> None:
    salesforce = Salesforce()
    server = serve(salesforce)
    connector = make_connector(server.url, auth=jwt_config(), clock=FakeClock())

    async def scenario() -> None:
        try:
            await connector.call(CallRequest("get", {}))
            salesforce.valid.clear()  # the session expires
            assert (await connector.call(CallRequest("get", {}))).status == 200
        finally:
            await connector.aclose()

    run(scenario())
    assert salesforce.issued == ["00D-session-1", "00D-session-2"]
    assert [r.path for r in server.requests] == ["/services/oauth2/token", "/", "/", "/services/oauth2/token", "/"]


def test_jwt_bearer_signed_with_another_key_is_refused_without_leaking_the_key(serve) -> None:
    _other_pem, other_public = rsa_pem()
    server = serve(Salesforce(public_key=other_public))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth=jwt_config())))
    assert caught.value.status == 400
    text = str(caught.value) + json.dumps(caught.value.body)
    assert "PRIVATE KEY" not in text and PEM.splitlines()[1] not in text


def test_jwt_bearer_with_an_unusable_key_is_a_config_error_naming_no_key_material() -> None:
    broken = PEM.replace(PEM.splitlines()[2], "A" * 64)
    with pytest.raises(ConnectorError) as caught:
        make_connector("http://127.0.0.1:9", auth=jwt_config(private_key=broken))
    assert caught.value.reason == "config" and "private_key is not an unencrypted PEM private key" in str(caught.value)
    assert PEM.splitlines()[1] not in str(caught.value)


# ---------------------------------------------------------------------------------------- SAP CSRF

CSRF_FAILED = Reply(403, b"CSRF token validation failed", {"x-csrf-token": "Required", "Content-Type": "text/plain"})


class Sap:
    """SAP Gateway's CSRF protocol: `x-csrf-token: fetch` on a GET hands out a token bound to a session
    cookie; writes without both are refused with 403 `x-csrf-token: Required`."""

    def __init__(self) -> None:
        self.session = 0
        self.tokens: dict[str, str] = {}  # session cookie → token
        self.created: list[Any] = []

    def __call__(self, seen: Seen) -> Reply:
        cookies = dict(part.strip().split("=", 1) for part in seen.headers.get("cookie", "").split(";") if "=" in part)
        session = cookies.get("SAP_SESSIONID_S4H_100")
        if seen.method == "GET" and seen.headers.get("x-csrf-token", "").lower() == "fetch":
            self.session += 1
            session = f"sess-{self.session}"
            self.tokens[session] = f"tok{self.session}=="
            return Reply(
                200,
                b"",
                {
                    "x-csrf-token": self.tokens[session],
                    "Set-Cookie": f"SAP_SESSIONID_S4H_100={session}; path=/; HttpOnly",
                    "set-cookie": "sap-usercontext=sap-client=100; path=/",
                },
            )
        if seen.method in ("POST", "PATCH", "PUT", "DELETE"):
            if session is None or seen.headers.get("x-csrf-token") != self.tokens.get(session):
                return CSRF_FAILED
            if cookies.get("sap-usercontext") != "sap-client=100":
                return json_reply({"error": "client"}, 400)
            self.created.append(seen.json())
            return json_reply({"d": {"SalesOrder": str(len(self.created))}}, 201)
        return json_reply({"d": {"results": []}})


SAP_OPERATIONS: dict[str, dict[str, Any]] = {
    "create": {"method": "POST", "path": "/A_SalesOrder", "body": {"SalesOrderType": "OR"}},
    "list": {"method": "GET", "path": "/A_SalesOrder"},
}
SAP_CONFIG = {"csrf": {"path": "/"}, "auth": {"type": "basic", "username": "RFC_USER", "password": "sap-pass-0001"}}


def test_csrf_token_is_fetched_once_with_the_session_and_sent_on_writes(serve) -> None:
    sap = Sap()
    server = serve(sap)
    connector = make_connector(
        server.url + "/sap/opu/odata/sap/API_SALES_ORDER_SRV", operations=SAP_OPERATIONS, **SAP_CONFIG
    )

    async def scenario() -> list[Any]:
        try:
            out = [(await connector.call(CallRequest("list", {}))).output]
            out += [(await connector.call(CallRequest("create", {}))).output for _ in range(2)]
            return out
        finally:
            await connector.aclose()

    assert run(scenario()) == [{"d": {"results": []}}, {"d": {"SalesOrder": "1"}}, {"d": {"SalesOrder": "2"}}]
    list_, fetch, *writes = server.requests
    assert "x-csrf-token" not in list_.headers  # reads need no token
    assert (fetch.method, fetch.path, fetch.headers["x-csrf-token"]) == (
        "GET",
        "/sap/opu/odata/sap/API_SALES_ORDER_SRV/",
        "fetch",
    )
    assert fetch.headers["authorization"].startswith("Basic ")
    assert [w.headers["x-csrf-token"] for w in writes] == ["tok1==", "tok1=="]
    assert all("SAP_SESSIONID_S4H_100=sess-1" in w.headers["cookie"] for w in writes)


def test_csrf_token_is_fetched_again_once_on_403_validation_failed(serve) -> None:
    sap = Sap()
    server = serve(sap)
    connector = make_connector(server.url, operations=SAP_OPERATIONS, **SAP_CONFIG)

    async def scenario() -> Any:
        try:
            await connector.call(CallRequest("create", {}))
            sap.tokens.clear()  # the session times out on the server
            return (await connector.call(CallRequest("create", {}))).output
        finally:
            await connector.aclose()

    assert run(scenario()) == {"d": {"SalesOrder": "2"}}
    methods = [(r.method, r.headers.get("x-csrf-token")) for r in server.requests]
    assert methods == [("GET", "fetch"), ("POST", "tok1=="), ("POST", "tok1=="), ("GET", "fetch"), ("POST", "tok2==")]


def test_csrf_refetch_is_tried_only_once_then_the_403_is_the_error(serve) -> None:
    def always_refused(seen: Seen) -> Reply:
        if seen.method == "GET":
            return Reply(200, b"", {"x-csrf-token": "tok-secret-value=="})
        return CSRF_FAILED

    server = serve(always_refused)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations=SAP_OPERATIONS, **SAP_CONFIG), "create"))
    assert caught.value.status == 403
    assert [r.method for r in server.requests] == ["GET", "POST", "GET", "POST"]
    assert "tok-secret-value" not in str(caught.value) + repr(caught.value.body)


def test_csrf_fetch_without_a_token_is_a_clear_error(serve) -> None:
    server = serve(lambda seen: json_reply({}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations=SAP_OPERATIONS, **SAP_CONFIG), "create"))
    assert "CSRF token request GET / answered without a token in x-csrf-token" in str(caught.value)
    assert [r.method for r in server.requests] == ["GET"]
