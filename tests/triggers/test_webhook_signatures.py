"""Webhook signature schemes checked against the vendors' own signers: Stripe-Signature headers made by
the official `stripe` package, Shopify's documented base64 HMAC and GitHub's `sha256=` header.
Our verifier must accept what the vendor makes, and the vendor's verifier what our `sign` makes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
import stripe
from pydantic import ValidationError

from runtime.spec.webhook_auth import WebhookAuth
from runtime.triggers.webhook_auth import AuthFailure, sign, verify

SECRET = "whsec_test_secret_0001"
OLD = "whsec_test_secret_old_0002"
NOW = 1_767_000_000
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}).encode()


def auth(**fields: Any) -> WebhookAuth:
    return WebhookAuth.model_validate({"secret": "S", "previous_secret": "P", **fields})


def resolve_with(secret: str, previous: str | None = None) -> Any:
    return lambda name: {"S": secret, "P": previous}.get(name or "")


def check(spec: WebhookAuth, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> AuthFailure | None:
    return verify(spec, headers, body, now=now, resolve=resolve_with(SECRET, OLD))


def stripe_header(secret: str = SECRET, timestamp: int = NOW, body: bytes = BODY) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
    return header


# ------------------------------------------------------------------------------------------- stripe


def test_stripe_preset_fills_the_header_and_format() -> None:
    spec = auth(type="stripe")
    assert spec.header == "Stripe-Signature"
    assert (spec.timestamp_key, spec.signature_keys, spec.payload) == ("t", ["v1"], "{timestamp}.{body}")


def test_a_header_made_by_the_stripe_package_is_accepted() -> None:
    assert check(auth(type="stripe"), {"Stripe-Signature": stripe_header()}) is None


def test_the_stripe_package_accepts_the_header_syncline_signs() -> None:
    headers = sign(auth(type="stripe"), SECRET, BODY, NOW)
    event = stripe.WebhookSignature.verify_header(BODY, headers["Stripe-Signature"], SECRET, tolerance=None)
    assert event is True


def test_several_v1_signatures_during_rotation_any_one_matching_is_enough() -> None:
    """While Stripe rolls an endpoint secret it sends one v1 per active secret."""
    unknown = stripe_header("whsec_someone_else").split(",")[1]
    ours = stripe_header().split(",")[1]
    header = f"t={NOW},{unknown},{ours}"
    assert check(auth(type="stripe"), {"Stripe-Signature": header}) is None
    only_unknown = f"t={NOW},{unknown},v0={ours[3:]}"
    assert check(auth(type="stripe"), {"Stripe-Signature": only_unknown}) == AuthFailure(
        "bad_signature", "signature does not match"
    )


def test_the_previous_secret_is_accepted_while_rotating_and_a_foreign_one_is_not() -> None:
    assert check(auth(type="stripe"), {"Stripe-Signature": stripe_header(OLD)}) is None
    failure = check(auth(type="stripe"), {"Stripe-Signature": stripe_header("whsec_wrong")})
    assert failure is not None and failure.reason == "bad_signature"


@pytest.mark.parametrize(
    ("tampered", "reason"),
    [
        (BODY.replace(b"invoice.paid", b"invoice.void"), "bad_signature"),
        (BODY + b" ", "bad_signature"),  # the raw bytes are signed, not the parsed JSON
    ],
)
def test_a_tampered_body_is_refused(tampered: bytes, reason: str) -> None:
    failure = check(auth(type="stripe"), {"Stripe-Signature": stripe_header()}, body=tampered)
    assert failure is not None and failure.reason == reason


def test_a_tampered_timestamp_is_refused() -> None:
    header = stripe_header().replace(f"t={NOW}", f"t={NOW + 1}")
    failure = check(auth(type="stripe"), {"Stripe-Signature": header})
    assert failure is not None and failure.reason == "bad_signature"


@pytest.mark.parametrize(
    ("age", "tolerance", "accepted"), [(299, "300s", True), (301, "300s", False), (301, "10m", True)]
)
def test_tolerance_default_300_seconds_and_configurable(age: int, tolerance: str, accepted: bool) -> None:
    header = stripe_header(timestamp=NOW - age)
    default = auth(type="stripe") if tolerance == "300s" else auth(type="stripe", tolerance=tolerance)
    failure = check(default, {"Stripe-Signature": header})
    assert (failure is None) is accepted
    if not accepted:
        assert failure is not None and failure.reason == "stale_timestamp"
        # the stripe package agrees that it is too old
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=age - 1)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("v1=abcd", "missing_timestamp"),
        ("t=yesterday,v1=abcd", "bad_timestamp"),
        (f"t={NOW},t={NOW},v1=abcd", "bad_timestamp"),
        (f"t={NOW}", "missing_signature"),
        (f"t={NOW},v1=not-hex", "bad_signature"),
        (f"t={NOW},v1=", "bad_signature"),
    ],
)
def test_malformed_stripe_headers_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    headers = {} if header is None else {"Stripe-Signature": header}
    failure = check(auth(type="stripe"), headers)
    assert failure is not None and failure.reason == reason
    assert SECRET not in failure.message


def test_no_configured_secret_refuses() -> None:
    spec = auth(type="stripe")
    failure = verify(spec, {"Stripe-Signature": stripe_header()}, BODY, now=NOW, resolve=lambda name: None)
    assert failure is not None and failure.reason == "no_secret"


# --------------------------------------------------------------------------------- generic form


def test_generic_signature_header_with_other_separators_keys_payload_and_base64() -> None:
    spec = auth(
        type="signature_header",
        header="X-Vendor-Signature",
        item_separator=";",
        key_separator=":",
        timestamp_key="ts",
        signature_keys=["s1", "s2"],
        payload="{timestamp}:{body}",
        encoding="base64",
        algorithm="sha512",
    )
    mac = base64.b64encode(hmac.new(SECRET.encode(), f"{NOW}:".encode() + BODY, hashlib.sha512).digest()).decode()
    assert check(spec, {"X-Vendor-Signature": f"ts:{NOW}; s2:{mac}"}) is None
    assert sign(spec, SECRET, BODY, NOW) == {"X-Vendor-Signature": f"ts:{NOW};s1:{mac}"}
    failure = check(spec, {"X-Vendor-Signature": f"ts:{NOW};s3:{mac}"})
    assert failure is not None and failure.reason == "missing_signature"


def test_generic_signature_header_without_a_timestamp() -> None:
    spec = auth(type="signature_header", timestamp_key=None, payload="{body}")
    mac = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert check(spec, {"X-Signature": f"v1={mac}"}) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload": "{timestamp}"}, "payload must hold {body} once"),
        ({"payload": "{body}.{nonce}"}, "no other {…} placeholders"),
        ({"timestamp_key": None}, "timestamp_key is null"),
        ({"timestamp_header": "X-Timestamp"}, "use timestamp_key"),
        ({"key_separator": ","}, "must differ"),
        ({"signature_keys": []}, "at least 1 item"),
    ],
)
def test_inconsistent_generic_settings_are_load_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        auth(type="stripe", **fields)


# ------------------------------------------------------------------------------- shopify, github


def test_shopify_base64_hmac_of_the_raw_body() -> None:
    """Shopify's documented scheme: base64(HMAC-SHA256(secret, raw body)) in X-Shopify-Hmac-Sha256."""
    spec = auth(type="shopify")
    assert (spec.header, spec.encoding) == ("X-Shopify-Hmac-Sha256", "base64")
    digest = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert check(spec, {"X-Shopify-Hmac-Sha256": digest}) is None
    assert check(spec, {"X-Shopify-Hmac-Sha256": digest}, body=BODY + b"\n") is not None
    assert check(spec, {"X-Shopify-Hmac-Sha256": hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()})
    assert sign(spec, SECRET, BODY) == {"X-Shopify-Hmac-Sha256": digest}


def test_github_sha256_prefix() -> None:
    """GitHub's documented test vector (docs: "Validating webhook deliveries")."""
    spec = WebhookAuth.model_validate({"type": "github", "secret": "S"})
    assert (spec.header, spec.prefix) == ("X-Hub-Signature-256", "sha256=")
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    def resolve(name: str | None) -> str | None:
        return "It's a Secret to Everybody" if name == "S" else None

    assert verify(spec, {"X-Hub-Signature-256": vector}, b"Hello, World!", now=NOW, resolve=resolve) is None
    failure = verify(spec, {"X-Hub-Signature-256": vector[7:]}, b"Hello, World!", now=NOW, resolve=resolve)
    assert failure is not None and failure.reason == "bad_signature"


def test_a_flow_may_override_a_preset_field() -> None:
    assert auth(type="github", header="X-Hub-Signature-Custom").header == "X-Hub-Signature-Custom"
    assert auth(type="hmac_sha256").header == "X-Signature"
