"""Secrets canary: every secret field holds a unique canary; errors are provoked; no canary may appear
in an exception's message, str, repr, traceback, body, in the call's result meta, or in any log record."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest

from runtime.connector_api import CallRequest, ConnectorError
from tests.connectors.http.http_target import Reply, Seen, free_port, json_reply, make_connector, run

CANARY = {
    "basic": "CANARY-basic-pw-7f3a",
    "bearer": "CANARY-bearer-91c2",
    "api_header": "CANARY-apikey-h-55d1",
    "api_query": "CANARY apikey/q&=0c4e",
    "client_secret": "CANARY-client-secret-e8b7",
    "access_token": "CANARY-access-token-4b19",
    "hmac": "CANARY-hmac-secret-a2f0",
}

AUTHS: dict[str, dict[str, Any]] = {
    "basic": {"type": "basic", "username": "svc", "password": CANARY["basic"]},
    "bearer": {"type": "bearer", "token": CANARY["bearer"]},
    "api_header": {"type": "api_key", "name": "X-Key", "value": CANARY["api_header"]},
    "api_query": {"type": "api_key", "name": "key", "value": CANARY["api_query"], "in": "query"},
    "oauth_basic": {
        "type": "oauth2_client_credentials",
        "token_url": "/oauth/token",
        "client_id": "svc",
        "client_secret": CANARY["client_secret"],
    },
    "oauth_body": {
        "type": "oauth2_client_credentials",
        "token_url": "/oauth/token",
        "client_id": "svc",
        "client_secret": CANARY["client_secret"],
        "client_auth": "body",
    },
    "hmac": {"type": "hmac", "secret": CANARY["hmac"]},
}


def forbidden() -> list[str]:
    """Each canary in the forms it could travel in."""
    out: list[str] = []
    for value in CANARY.values():
        out += [value, quote(value, safe=""), quote_plus(value)]
    out.append(base64.b64encode(f"svc:{CANARY['basic']}".encode()).decode())
    out.append(base64.b64encode(f"svc:{quote_plus(CANARY['client_secret'])}".encode()).decode())
    return out


def echo(seen: Seen, status: int) -> Reply:
    """A careless server: echoes every header, the query and the body back in a JSON error."""
    return json_reply(
        {"error": "boom", "headers": seen.headers, "query": seen.query, "body": seen.body.decode("latin-1")},
        status,
    )


def token_endpoint(seen: Seen, *, fail: bool) -> Reply:
    if fail:
        form = parse_qs(seen.body.decode())
        text = f"invalid_client for {seen.headers.get('authorization')} {form}"
        return Reply(400, text, {"Content-Type": "text/plain"})
    return json_reply({"access_token": CANARY["access_token"], "expires_in": 3600})


SCENARIOS = ["401", "500-echo", "500-text-echo", "connect", "timeout", "bad-token-endpoint"]


def app_for(scenario: str):
    def app(seen: Seen) -> Reply:
        if seen.path == "/oauth/token":
            return token_endpoint(seen, fail=scenario == "bad-token-endpoint")
        if scenario == "401":
            return echo(seen, 401)
        if scenario == "500-echo":
            return echo(seen, 500)
        if scenario == "500-text-echo":
            return Reply(
                500,
                f"Authorization was {seen.headers.get('authorization')} on {seen.target}",
                {"Content-Type": "text/plain"},
            )
        if scenario == "timeout":
            return Reply(200, "late", delay=2)
        return echo(seen, 500)

    return app


def assert_clean(text: str, where: str) -> None:
    for needle in forbidden():
        assert needle not in text, f"secret leaked in {where}: {text[:300]!r}"


CASES = [
    (auth, scenario)
    for auth in AUTHS
    for scenario in SCENARIOS
    if scenario != "bad-token-endpoint" or auth.startswith("oauth")  # only OAuth has a token endpoint
]


@pytest.mark.parametrize(("auth_name", "scenario"), CASES)
def test_no_secret_leaves_the_connector(serve, caplog, auth_name, scenario):
    caplog.set_level(logging.DEBUG)
    server = serve(app_for(scenario))
    base = f"http://127.0.0.1:{free_port()}" if scenario == "connect" else server.url
    connector = make_connector(base, auth=AUTHS[auth_name], timeout="300ms")
    request = CallRequest("get", {"method": "POST", "path": "/orders", "body": {"n": 1}}, idempotency_key="k")

    async def go() -> ConnectorError:
        try:
            await connector.call(request)
        except ConnectorError as exc:
            return exc
        finally:
            await connector.aclose()
        raise AssertionError("the call was expected to fail")

    error = run(go())
    assert_clean(str(error), "str(error)")
    assert_clean(repr(error), "repr(error)")
    assert_clean(" ".join(map(str, error.args)), "error.args")
    assert_clean("".join(traceback.format_exception(error)), "the traceback")
    assert_clean(json.dumps(error.body, default=str), "error.body")
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")
        if record.exc_info:
            assert_clean("".join(traceback.format_exception(*record.exc_info)), "logged traceback")
    if scenario in ("500-echo", "401") and auth_name not in ("hmac",):
        # the server really did see (and echo) the secret; the connector removed it
        assert "***" in json.dumps(error.body, default=str)


def test_runtime_redact_is_applied_too(serve):
    server = serve(lambda seen: Reply(500, "customer 4711 failed", {"Content-Type": "text/plain"}))
    connector = make_connector(server.url, redact=lambda text: text.replace("4711", "[masked]"))

    async def go() -> ConnectorError:
        try:
            await connector.call(CallRequest("get", {"path": "/customers/4711"}))
        except ConnectorError as exc:
            return exc
        finally:
            await connector.aclose()
        raise AssertionError

    error = run(go())
    assert "4711" not in str(error) and error.body == "customer [masked] failed"


def test_config_repr_hides_secrets():
    connector_config = make_connector("http://127.0.0.1:1", auth=AUTHS["oauth_basic"])._config
    assert CANARY["client_secret"] not in repr(connector_config)
    assert CANARY["client_secret"] not in connector_config.model_dump_json()


def test_successful_call_meta_has_no_secret(serve):
    server = serve(lambda seen: json_reply({"ok": True}, headers={"X-Echo": seen.headers.get("x-key", "")}))
    connector = make_connector(server.url, auth=AUTHS["api_header"])

    async def go() -> Any:
        try:
            return await connector.call(CallRequest("get", {}))
        finally:
            await connector.aclose()

    result = run(go())
    assert_clean(json.dumps(result.meta, default=str), "result.meta")
