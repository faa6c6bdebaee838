"""The HTTP intake conformance kit (runtime/testing/http_intake_kit.py) on the built-in `webhook` kind
(HMAC and API-key auth, a schema, a `{tenant}` path; good and bad requests), on a correct plugin kind
with its own signature scheme and a URL-verification handshake, and on broken variants of that kind it
must catch: one that acknowledges before `accept`, one that leaks its secret in an error body or a log
record, one that swallows a failed commit, one that shares state between requests, and others."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any, Literal

import pytest
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.clock import FakeClock
from runtime.source_api import HttpContext, SecretUnavailable, TriggerType
from runtime.spec.common import Model
from runtime.testing.http_intake_kit import IntakeKitFailure, KitRequest, check_http_intake
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.webhook import WebhookSpec
from runtime.triggers.webhook_auth import sign

HOOK_SECRET = "kit-hook-secret-Zr81"
CLOCK = FakeClock("2026-12-04T12:00:00Z")
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "total"],
    "properties": {"id": {"type": "string"}, "total": {"type": "number", "minimum": 0}},
}


def _webhook(**auth: Any) -> WebhookSpec:
    return WebhookSpec.model_validate(
        {
            "path": "/hooks/{tenant}/orders",
            "auth": auth,
            "schema": "schemas/order.json",
            "idempotency_key": "{{ input.id }}",
            "max_body": "2KB",
        }
    )


def _signed(spec: WebhookSpec, data: Any, *, secret: str = HOOK_SECRET, **extra: str) -> KitRequest:
    body = json.dumps(data).encode()
    assert spec.auth is not None
    headers = {"Content-Type": "application/json", **sign(spec.auth, secret, body, int(CLOCK.time())), **extra}
    return KitRequest(body, headers, path="/hooks/acme/orders", payload=data)


async def test_the_webhook_kind_with_hmac_auth_and_a_schema_keeps_the_intake_contract() -> None:
    spec = _webhook(type="hmac_sha256", secret="{{ secret('HOOK_SECRET') }}", timestamp_header="X-Timestamp")
    order = {"id": "o-1", "total": 10}
    good = _signed(spec, order)
    accepted = [
        good,
        _signed(spec, {"id": "o-2", "total": 25.5, "note": "ü"}, **{"X-Correlation-Id": "c-42"}),
        KitRequest(good.body, {**good.headers, "Content-Type": "application/cloudevents+json"}, path="/hooks/b/orders"),
    ]
    unsigned = {"Content-Type": "application/json"}
    refused = [
        KitRequest(
            good.body, {**good.headers, "X-Signature": "0" * 64}, path="/hooks/acme/orders", reason="bad_signature"
        ),
        KitRequest(good.body, unsigned, path="/hooks/acme/orders", status=401, reason="missing_signature"),
        _refused(_signed(spec, {"id": "o-3", "total": -1}), status=422, reason="schema"),
        _refused(_signed(spec, {"id": 7, "total": 1}), status=422, reason="schema"),
        KitRequest(b'{"id": "o-4",', unsigned, path="/hooks/acme/orders", status=400, reason="invalid_json"),
        KitRequest(
            good.body, {"Content-Type": "text/plain"}, path="/hooks/acme/orders", reason="unsupported_media_type"
        ),
        KitRequest(b"x" * 3000, unsigned, path="/hooks/acme/orders", status=413, reason="too_large"),
        _refused(_signed(spec, order, secret="not-the-hook-secret"), status=401, reason="bad_signature"),
    ]
    ctx = await check_http_intake(
        default_trigger_registry().get("webhook"),
        spec,
        accepted=accepted,
        refused=refused,
        secrets={"HOOK_SECRET": HOOK_SECRET},
        schemas={"schemas/order.json": ORDER_SCHEMA},
        clock=CLOCK,
    )
    assert ctx.resolved == {"HOOK_SECRET"}
    assert ctx.runs == 3 + 3 * 8  # one run per accepted request, and per concurrent copy


async def test_the_webhook_kind_with_an_api_key_keeps_the_key_out_of_the_runs_headers() -> None:
    """The key is the secret itself, sent in the flow's own header: the run must not keep it (the kit
    looks for the secret's value in the headers handed to `accept`)."""
    spec = _webhook(type="api_key", secret="{{ secret('HOOK_SECRET') }}", header="X-Hook-Key")
    json_type = {"Content-Type": "application/json"}
    body = json.dumps({"id": "o-1", "total": 3}).encode()
    await check_http_intake(
        default_trigger_registry().get("webhook"),
        spec,
        accepted=[
            KitRequest(body, {**json_type, "X-Hook-Key": HOOK_SECRET}, path="/hooks/acme/orders"),
            KitRequest(b'{"id": "o-2", "total": 4}', {**json_type, "X-Hook-Key": HOOK_SECRET}, path="/hooks/a/orders"),
        ],
        refused=[
            KitRequest(body, {**json_type, "X-Hook-Key": "a-wrong-key"}, path="/hooks/acme/orders", status=401),
            KitRequest(body, json_type, path="/hooks/acme/orders", status=401),
        ],
        secrets={"HOOK_SECRET": HOOK_SECRET},
        schemas={"schemas/order.json": ORDER_SCHEMA},
    )


def _refused(req: KitRequest, *, status: int, reason: str) -> KitRequest:
    return KitRequest(req.body, req.headers, path=req.path, status=status, reason=reason)


# --------------------------------------------------------------------------- a plugin kind, and its flaws
SIGNING_SECRET = "kit-signing-secret-Qx47"
Flaw = Literal[
    "acks_first",
    "leaks_secret",
    "logs_secret",
    "own_answer",
    "accepts_twice",
    "swallows_store_error",
    "uncounted_refusal",
    "shared_state",
    "skips_check_without_secret",
    "keeps_signature_secret",
    "secret_in_error",
]


class SignedSpec(Model):
    """Events signed with HMAC-SHA256 over the body (X-Sig), with a URL-verification handshake."""

    path: str = Field("/hooks/{team}/events")
    signing_secret: str = Field("{{ secret('SIGNING_SECRET') }}")
    flaw: Flaw | None = Field(None)


class SignedIntake:
    def __init__(self, spec: SignedSpec) -> None:
        self.spec = spec
        self.method = "POST"
        self.path = spec.path
        self.pending: Any = None

    async def handle(self, request: Request, ctx: HttpContext) -> Response:
        flaw = self.spec.flaw
        body = await request.body()
        try:
            secret = ctx.secret(self.spec.signing_secret) or ""
        except SecretUnavailable:
            if flaw != "skips_check_without_secret":
                return ctx.problem(503, "not_configured", "the signing secret is not set", retry_after=30)
            secret = None
        if flaw == "logs_secret":
            ctx.log.debug("checking a delivery with key %s", secret)
        if secret is not None:
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, request.headers.get("x-sig", "")):
                if flaw == "leaks_secret":
                    return ctx.reject(401, "bad_signature", f"sign the body with {secret}")
                if flaw == "uncounted_refusal":
                    return JSONResponse({"error": "bad signature"}, status_code=401)
                return ctx.reject(401, "bad_signature", "the signature does not match")
        data = json.loads(body)
        if data.get("type") == "url_verification":
            return JSONResponse({"challenge": data["challenge"]})
        headers = {"x-team": request.path_params["team"]}
        if flaw == "keeps_signature_secret":
            headers["x-signing-key"] = secret or ""
        if flaw == "acks_first":
            return JSONResponse({"ok": True}, status_code=202)
        if flaw == "shared_state":
            self.pending = data
            await asyncio.sleep(0)
            data = self.pending
        if flaw == "accepts_twice":
            await ctx.accept(data, headers=headers)
        if flaw == "secret_in_error":
            try:
                return await ctx.accept(data, headers=headers)
            except Exception as exc:
                raise RuntimeError(f"the delivery signed with {secret} was not stored") from exc
        if flaw == "swallows_store_error":
            try:
                return await ctx.accept(data, headers=headers)
            except Exception:
                return JSONResponse({"ok": True}, status_code=202)
        answer = await ctx.accept(data, headers=headers, digest=hashlib.sha256(body).hexdigest())
        if flaw == "own_answer":
            return JSONResponse({"ok": True})
        return answer


SIGNED = TriggerType(key="signed_events", model=SignedSpec, description="test", http=SignedIntake)


def _event(data: Any, *, secret: str = SIGNING_SECRET, path: str = "/hooks/T1/events", **kw: Any) -> KitRequest:
    body = json.dumps(data).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return KitRequest(body, {"Content-Type": "application/json", "X-Sig": signature}, path=path, **kw)


async def _check_signed(spec: SignedSpec) -> None:
    await check_http_intake(
        SIGNED,
        spec,
        accepted=[
            _event({"event_id": "Ev1", "text": "hello"}, payload={"event_id": "Ev1", "text": "hello"}),
            _event({"event_id": "Ev2", "text": "world"}, path="/hooks/T2/events"),
        ],
        refused=[
            _event({"event_id": "Ev3"}, secret="not-the-signing-secret", status=401, reason="bad_signature"),
            KitRequest(b'{"event_id": "Ev4"}', {"X-Sig": "nope"}, path="/hooks/T1/events", name="forged"),
        ],
        answered=[_event({"type": "url_verification", "challenge": "3eZbrw1a"}, name="handshake")],
        secrets={"SIGNING_SECRET": SIGNING_SECRET},
        timeout=5,
    )


async def test_a_correct_plugin_kind_with_a_handshake_passes() -> None:
    await _check_signed(SignedSpec())


@pytest.mark.parametrize(
    ("flaw", "caught"),
    [
        ("acks_first", r"answered 202 without calling ctx.accept"),
        ("leaks_secret", r"secret 'SIGNING_SECRET' is in the response body"),
        ("logs_secret", r"secret 'SIGNING_SECRET' is in a log record of 'syncline.intake.signed_events'"),
        ("keeps_signature_secret", r"secret 'SIGNING_SECRET' is in the headers the run keeps"),
        ("own_answer", r"ctx.accept answered 202 but the intake answered 200 with a response of its own"),
        ("accepts_twice", r"called ctx.accept 2 times"),
        ("swallows_store_error", r"whose commit failed: ctx.accept raised StoreError .* answered 202"),
        ("uncounted_refusal", r"refused with 401 without ctx.reject"),
        ("shared_state", r"run concurrently\): ctx.accept was given .* calls share state"),
        ("secret_in_error", r"whose commit failed: the value of secret 'SIGNING_SECRET' is in the RuntimeError"),
        ("skips_check_without_secret", r"while secrets SIGNING_SECRET are not set: called ctx.accept"),
    ],
)
async def test_the_kit_catches_a_broken_intake(flaw: Flaw, caught: str) -> None:
    with pytest.raises(IntakeKitFailure, match=caught) as failure:
        await _check_signed(SignedSpec(flaw=flaw))
    assert SIGNING_SECRET not in str(failure.value)  # the kit names a leaked secret, never shows it


@pytest.mark.parametrize(
    ("path", "caught"),
    [
        ("/api/v1/events", r"is reserved for the service itself \(validate reports SL044\)"),
        ("/hooks/x{team}/events", r"a parameter is a whole segment"),
        ("/hooks/{team}/{team}", r"names a parameter twice"),
        ("hooks/events", r"is not a valid path"),
    ],
)
async def test_the_kit_catches_a_path_the_core_would_not_route(path: str, caught: str) -> None:
    with pytest.raises(IntakeKitFailure, match=caught):
        await check_http_intake(SIGNED, SignedSpec(path=path), accepted=[_event({"event_id": "Ev1"})])


async def test_a_request_the_core_would_not_route_to_the_intake_is_refused_by_the_kit() -> None:
    with pytest.raises(
        IntakeKitFailure, match=r"would not route /hooks/T1/other to the intake's /hooks/\{team\}/events"
    ):
        await check_http_intake(SIGNED, SignedSpec(), accepted=[_event({"event_id": "Ev1"}, path="/hooks/T1/other")])
    with pytest.raises(IntakeKitFailure, match=r"give the request a concrete `path`"):
        await check_http_intake(SIGNED, SignedSpec(), accepted=[_event({"event_id": "Ev1"}, path=None)])


async def test_the_slack_events_plugin_of_the_plugin_test_keeps_the_intake_contract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `slack_events` kind that tests/triggers/test_http_plugin.py installs from an outside package
    and serves, loaded in-process here: its events, forged and stale requests and its handshake."""
    import sys
    import types

    from tests.triggers.test_http_plugin import PLUGIN

    module = types.ModuleType("kit_syncline_slack")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(PLUGIN, "syncline_slack.py", "exec"), module.__dict__)
    secret, now = "kit-slack-secret-9fA2", int(CLOCK.time())

    def slack(data: Any, *, stamp: int = now, key: str = secret, **kw: Any) -> KitRequest:
        body = json.dumps(data).encode()
        signed = hmac.new(key.encode(), b"v0:%d:" % stamp + body, hashlib.sha256).hexdigest()
        headers = {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": f"v0={signed}"}
        return KitRequest(body, headers, path="/hooks/slack/T1/events", **kw)

    event = {"type": "event_callback", "event_id": "Ev01", "event": {"text": "hi"}}
    ctx = await check_http_intake(
        module.TRIGGER,
        module.SlackEventsSpec(path="/hooks/slack/{team}/events", signing_secret="{{ secret('SLACK') }}"),
        accepted=[slack(event, payload=event), slack({**event, "event_id": "Ev02"})],
        refused=[
            slack(event, key="not-the-slack-secret", status=401, reason="bad_signature"),
            slack(event, stamp=now - 3600, status=401, reason="stale_timestamp"),
        ],
        answered=[slack({"type": "url_verification", "challenge": "3eZbrw1a"}, name="url_verification")],
        secrets={"SLACK": secret},
        clock=CLOCK,
    )
    assert ctx.counters == {"challenges": 1.0}
