"""Each auth type, as verified by a real server playing the target system."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

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

UNAUTHORIZED = json_reply({"error": "unauthorized"}, 401)


def guarded(check):
    def app(seen: Seen) -> Reply:
        return json_reply({"ok": True}) if check(seen) else UNAUTHORIZED

    return app


def test_basic(serve):
    expected = "Basic " + base64.b64encode(b"integration:p@ss:w0rd").decode()
    server = serve(guarded(lambda seen: seen.headers.get("authorization") == expected))
    auth = {"type": "basic", "username": "integration", "password": "p@ss:w0rd"}
    assert run(call_once(make_connector(server.url, auth=auth))).output == {"ok": True}


def test_bearer(serve):
    server = serve(guarded(lambda seen: seen.headers.get("authorization") == "Bearer t0ken"))
    assert run(call_once(make_connector(server.url, auth={"type": "bearer", "token": "t0ken"}))).status == 200


def test_api_key_header(serve):
    server = serve(guarded(lambda seen: seen.headers.get("x-api-key") == "k-1"))
    auth = {"type": "api_key", "name": "X-API-Key", "value": "k-1"}
    assert run(call_once(make_connector(server.url, auth=auth))).status == 200


def test_api_key_query(serve):
    server = serve(guarded(lambda seen: seen.query.get("api_key") == ["k 2&x"] and seen.query.get("q") == ["1"]))
    auth = {"type": "api_key", "name": "api_key", "value": "k 2&x", "in": "query"}
    result = run(call_once(make_connector(server.url, auth=auth), "get", {"query": {"q": 1}}))
    assert result.status == 200
    assert "k 2" not in result.meta["url"] and "api_key" not in result.meta["url"]


def test_api_key_is_not_sent_in_the_wrong_place(serve):
    server = serve(guarded(lambda seen: seen.headers.get("x-api-key") == "k-1"))
    auth = {"type": "api_key", "name": "X-API-Key", "value": "k-1", "in": "query"}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth=auth)))
    assert caught.value.status == 401 and caught.value.error_class == "fatal"


class OAuthServer:
    """Token endpoint at /oauth/token plus an API that accepts only the currently valid token."""

    def __init__(self, expires_in: int | None = 3600, client_auth: str = "basic") -> None:
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_forms: list[dict[str, list[str]]] = []
        self.expires_in = expires_in
        self.client_auth = client_auth
        self.api_calls = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/oauth/token":
            form = parse_qs(seen.body.decode())
            self.token_forms.append(form)
            if self.client_auth == "basic":
                expected = "Basic " + base64.b64encode(b"client-1:s3cret%2F%2B").decode()  # form-encoded per RFC 6749
                ok = seen.headers.get("authorization") == expected
            else:
                ok = form.get("client_id") == ["client-1"] and form.get("client_secret") == ["s3cret/+"]
            if not ok or form.get("grant_type") != ["client_credentials"]:
                return json_reply({"error": "invalid_client"}, 401)
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return json_reply(body)
        self.api_calls += 1
        bearer = seen.headers.get("authorization", "").removeprefix("Bearer ")
        return json_reply({"token": bearer}) if bearer in self.valid else UNAUTHORIZED


def oauth_config(**extra: object) -> dict[str, object]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": "/oauth/token",
        "client_id": "client-1",
        "client_secret": "s3cret/+",
        **extra,
    }


async def calls(connector, n: int) -> list[object]:
    try:
        return [(await connector.call(CallRequest("get", {}))).output for _ in range(n)]
    finally:
        await connector.aclose()


def test_oauth2_token_is_cached_across_calls(serve):
    oauth = OAuthServer()
    server = serve(oauth)
    outputs = run(
        calls(make_connector(server.url + "/api", auth=oauth_config(scope="orders:write", audience="erp")), 3)
    )
    assert outputs == [{"token": "tok-1"}] * 3
    assert oauth.issued == ["tok-1"]
    assert oauth.token_forms[0]["scope"] == ["orders:write"] and oauth.token_forms[0]["audience"] == ["erp"]


def test_oauth2_client_secret_in_body(serve):
    oauth = OAuthServer(client_auth="body")
    server = serve(oauth)
    assert run(calls(make_connector(server.url, auth=oauth_config(client_auth="body")), 1)) == [{"token": "tok-1"}]


def test_oauth2_refreshes_once_on_401(serve):
    oauth = OAuthServer()
    server = serve(oauth)
    connector = make_connector(server.url, auth=oauth_config())

    async def scenario():
        first = (await connector.call(CallRequest("get", {}))).output
        oauth.valid.clear()  # the server revokes tok-1
        second = (await connector.call(CallRequest("get", {}))).output
        await connector.aclose()
        return first, second

    assert run(scenario()) == ({"token": "tok-1"}, {"token": "tok-2"})
    assert oauth.issued == ["tok-1", "tok-2"] and oauth.api_calls == 3


def test_oauth2_refresh_is_tried_only_once(serve):
    oauth = OAuthServer()
    server = serve(lambda seen: oauth(seen) if seen.path == "/oauth/token" else UNAUTHORIZED)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth=oauth_config())))
    assert (caught.value.status, caught.value.error_class) == (401, "fatal")
    assert oauth.issued == ["tok-1", "tok-2"]
    assert [r.path for r in server.requests] == ["/oauth/token", "/", "/oauth/token", "/"]


def test_oauth2_token_expiry_uses_the_clock_and_margin(serve):
    oauth = OAuthServer(expires_in=120)
    server = serve(oauth)
    clock = FakeClock()
    connector = make_connector(server.url, auth=oauth_config(expiry_margin="30s"), clock=clock)

    async def scenario():
        seen = [(await connector.call(CallRequest("get", {}))).output]
        clock.advance(89)
        seen.append((await connector.call(CallRequest("get", {}))).output)
        clock.advance(2)  # 91s: past expires_in - margin
        seen.append((await connector.call(CallRequest("get", {}))).output)
        await connector.aclose()
        return seen

    assert run(scenario()) == [{"token": "tok-1"}, {"token": "tok-1"}, {"token": "tok-2"}]


def test_oauth2_bad_client_credentials_are_fatal(serve):
    oauth = OAuthServer()
    server = serve(oauth)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth=oauth_config(client_secret="wrong"))))
    assert (caught.value.status, caught.value.error_class) == (401, "fatal")
    assert "OAuth2 token request" in str(caught.value)
    assert oauth.api_calls == 0


def test_oauth2_absolute_token_url_on_another_host(serve):
    oauth = OAuthServer()
    idp = serve(oauth)
    api = serve(lambda seen: json_reply({"token": seen.headers.get("authorization")}))
    auth = oauth_config(token_url=f"{idp.url}/oauth/token")
    result = run(call_once(make_connector(api.url, auth=auth)))
    assert result.output == {"token": "Bearer tok-1"}


def test_oauth2_token_url_host_is_declared_too(serve):
    """An identity provider on the private network, named in the config's token_url: the author's choice
    (`localhost` is another host than base_url's `127.0.0.1`, so only the declaration lets it through)."""
    oauth = OAuthServer()
    idp = serve(oauth)
    api = serve(lambda seen: json_reply({"token": seen.headers.get("authorization")}))
    auth = oauth_config(token_url=f"http://localhost:{idp.port}/oauth/token")
    result = run(call_once(make_connector(api.url, auth=auth)))
    assert result.output == {"token": "Bearer tok-1"}


def _hmac_server(secret: bytes, algorithm: str, timestamp_header: str | None):
    def app(seen: Seen) -> Reply:
        signed = seen.body
        if timestamp_header:
            timestamp = seen.headers.get(timestamp_header.lower(), "")
            if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 60:
                return UNAUTHORIZED
            signed = timestamp.encode() + b"." + seen.body
        expected = hmac.new(secret, signed, getattr(hashlib, algorithm)).hexdigest()
        given = seen.headers.get("x-signature", "")
        return json_reply({"ok": True}) if hmac.compare_digest(expected, given) else UNAUTHORIZED

    return app


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("timestamp_header", [None, "X-Timestamp"])
def test_hmac_signature_checked_by_the_server(serve, algorithm, timestamp_header):
    server = serve(_hmac_server(b"hmac-secret", algorithm, timestamp_header))
    auth = {
        "type": "hmac",
        "secret": "hmac-secret",
        "algorithm": algorithm,
        "timestamp_header": timestamp_header,
    }
    ops = {"push": {"method": "POST", "body": {"order": 1, "total": Decimal("10.50")}}}
    result = run(call_once(make_connector(server.url, auth=auth, operations=ops), "push"))
    assert result.output == {"ok": True}
    assert server.requests[0].body == b'{"order":1,"total":10.50}'


def test_hmac_wrong_secret_is_rejected(serve):
    server = serve(_hmac_server(b"hmac-secret", "sha256", None))
    auth = {"type": "hmac", "secret": "other"}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, auth=auth), "get", {"method": "POST", "body": {"a": 1}}))
    assert caught.value.status == 401


def test_credentials_are_not_sent_to_another_origin_on_redirect(serve):
    other = serve(
        lambda seen: json_reply({"auth": seen.headers.get("authorization"), "key": seen.headers.get("x-api-key")})
    )
    api = serve(lambda seen: Reply(302, headers={"Location": f"{other.url}/x"}))
    for auth in (
        {"type": "bearer", "token": "tkn"},
        {"type": "api_key", "name": "X-API-Key", "value": "kkk"},
    ):
        result = run(call_once(make_connector(api.url, auth=auth)))
        assert result.output == {"auth": None, "key": None}
