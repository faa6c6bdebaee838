"""Webhook caller authentication: HMAC signatures over the raw body, API keys and basic auth.

HMAC (`hmac_sha256`, `hmac_sha512` and their presets `github`, `shopify`): the signature is the hex
(or base64) HMAC of the raw body — or of `<timestamp>.<body>` when the flow names a
`timestamp_header`. `signature_header` (preset `stripe`) reads the timestamp and one or more
signatures from one header (`Stripe-Signature: t=…,v1=…,v1=…`) and signs the flow's `payload`
template, `{timestamp}.{body}` by default. A signed Unix time must lie within `tolerance` of now
(stale and future requests are refused). Two secrets are accepted while one is rotated, and any of
several signatures may match. All comparisons are constant-time and every candidate is compared, so
timing does not tell which matched. Failures name the reason (for metrics) but never the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.spec.common import parse_duration
from runtime.spec.webhook_auth import HMAC_TYPES, SIGNATURE_HEADER_TYPES, WebhookAuth

SIGNED_TYPES = HMAC_TYPES | SIGNATURE_HEADER_TYPES
"""Types whose requests a sender signs with the secret (`sign` makes their headers)."""

_DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class AuthFailure:
    reason: str  # missing_signature | bad_signature | stale_timestamp | bad_timestamp | missing_key | bad_key ...
    message: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _digest_name(auth: WebhookAuth) -> str:
    if auth.type in SIGNATURE_HEADER_TYPES:
        return auth.algorithm
    return "sha512" if auth.type == "hmac_sha512" else "sha256"


def _mac(auth: WebhookAuth, secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, _DIGESTS[_digest_name(auth)]).digest()


def _encode(auth: WebhookAuth, mac: bytes) -> str:
    return base64.b64encode(mac).decode("ascii") if auth.encoding == "base64" else mac.hex()


def _decode(auth: WebhookAuth, text: str) -> bytes | None:
    """The MAC bytes a caller sent, or None when the text is not valid hex/base64."""
    text = text.strip()
    try:
        if auth.encoding == "base64":
            return base64.b64decode(text, validate=True)
        return bytes.fromhex(text) if text.isascii() and text.isalnum() else None
    except (ValueError, binascii.Error):
        return None


def _payload(auth: WebhookAuth, body: bytes, timestamp: int | None) -> bytes:
    """The bytes a `signature_header` sender signs: `payload` with the raw body and timestamp filled in."""
    before, _, after = auth.payload.partition("{body}")
    stamp = "" if timestamp is None else str(timestamp)
    return before.replace("{timestamp}", stamp).encode() + body + after.replace("{timestamp}", stamp).encode()


def sign(auth: WebhookAuth, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers a sender would add (used by FlowTests and the demo)."""
    if auth.type in SIGNATURE_HEADER_TYPES:
        stamp = timestamp if auth.timestamp_key is not None else None
        items = [] if stamp is None else [f"{auth.timestamp_key}{auth.key_separator}{stamp}"]
        signature = _encode(auth, _mac(auth, secret, _payload(auth, body, stamp)))
        items.append(f"{auth.signature_keys[0]}{auth.key_separator}{signature}")
        return {auth.header: auth.item_separator.join(items)}
    message = body if auth.timestamp_header is None else f"{timestamp}.".encode() + body
    headers = {auth.header: (auth.prefix or "") + _encode(auth, _mac(auth, secret, message))}
    if auth.timestamp_header is not None:
        headers[auth.timestamp_header] = str(timestamp)
    return headers


def verify(
    auth: WebhookAuth | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    resolve: Callable[[str | None], str | None],
) -> AuthFailure | None:
    """None when the request is authentic; otherwise why not. `resolve` renders a secret template."""
    if auth is None or auth.type == "none":
        return None
    if auth.type in HMAC_TYPES:
        return _verify_hmac(auth, headers, body, now, resolve)
    if auth.type in SIGNATURE_HEADER_TYPES:
        return _verify_signature_header(auth, headers, body, now, resolve)
    if auth.type == "api_key":
        given = _header(headers, auth.header)
        expected = resolve(auth.secret)
        if not given:
            return AuthFailure("missing_key", f"missing {auth.header} header")
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return AuthFailure("bad_key", f"wrong {auth.header}")
        return None
    if auth.type == "basic":
        given = _header(headers, "Authorization") or ""
        if not given.lower().startswith("basic "):
            return AuthFailure("missing_credentials", "missing basic credentials")
        try:
            user, _, password = base64.b64decode(given[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return AuthFailure("bad_credentials", "malformed basic credentials")
        ok_user = hmac.compare_digest(user.encode(), (resolve(auth.username) or "").encode())
        ok_password = hmac.compare_digest(password.encode(), (resolve(auth.password) or "\x00").encode())
        return None if ok_user and ok_password else AuthFailure("bad_credentials", "wrong user or password")
    return AuthFailure("unsupported", f"unsupported auth type {auth.type}")


def _timestamp(raw: str, name: str, auth: WebhookAuth, now: float) -> int | AuthFailure:
    try:
        stamp = int(raw.strip())
    except ValueError:
        return AuthFailure("bad_timestamp", f"{name} is not a Unix time")
    if abs(now - stamp) > parse_duration(auth.tolerance):
        return AuthFailure("stale_timestamp", "the signed timestamp is outside the allowed tolerance")
    return stamp


def _matches(
    auth: WebhookAuth, message: bytes, given: list[bytes], resolve: Callable[[str | None], str | None]
) -> AuthFailure | None:
    candidates = [s for s in (resolve(auth.secret), resolve(auth.previous_secret)) if s]
    if not candidates:
        return AuthFailure("no_secret", "the webhook secret is not configured")
    ok = False
    for secret in candidates:  # compare every pair, so timing does not tell which one matched
        expected = _mac(auth, secret, message)
        for signature in given:
            ok = hmac.compare_digest(expected, signature) or ok
    return None if ok else AuthFailure("bad_signature", "signature does not match")


def _verify_hmac(
    auth: WebhookAuth, headers: Mapping[str, str], body: bytes, now: float, resolve: Callable[[str | None], str | None]
) -> AuthFailure | None:
    given = _header(headers, auth.header)
    if not given:
        return AuthFailure("missing_signature", f"missing {auth.header} header")
    if auth.prefix:
        if not given.startswith(auth.prefix):
            return AuthFailure("bad_signature", "signature has the wrong prefix")
        given = given[len(auth.prefix) :]
    message = body
    if auth.timestamp_header is not None:
        raw = _header(headers, auth.timestamp_header)
        if raw is None:
            return AuthFailure("missing_timestamp", f"missing {auth.timestamp_header} header")
        stamp = _timestamp(raw, auth.timestamp_header, auth, now)
        if isinstance(stamp, AuthFailure):
            return stamp
        message = f"{stamp}.".encode() + body
    signature = _decode(auth, given)
    return _matches(auth, message, [] if signature is None else [signature], resolve)


def _verify_signature_header(
    auth: WebhookAuth, headers: Mapping[str, str], body: bytes, now: float, resolve: Callable[[str | None], str | None]
) -> AuthFailure | None:
    raw = _header(headers, auth.header)
    if not raw:
        return AuthFailure("missing_signature", f"missing {auth.header} header")
    stamps: list[str] = []
    signatures: list[str] = []
    for item in raw.split(auth.item_separator):
        key, found, value = item.partition(auth.key_separator)
        key = key.strip()
        if not found:
            continue
        if auth.timestamp_key is not None and key == auth.timestamp_key:
            stamps.append(value)
        elif key in auth.signature_keys:
            signatures.append(value)
    stamp: int | None = None
    if auth.timestamp_key is not None:
        if not stamps:
            return AuthFailure("missing_timestamp", f"{auth.header} has no {auth.timestamp_key} item")
        if len(stamps) > 1:
            return AuthFailure("bad_timestamp", f"{auth.header} has more than one {auth.timestamp_key} item")
        checked = _timestamp(stamps[0], f"{auth.header} item {auth.timestamp_key}", auth, now)
        if isinstance(checked, AuthFailure):
            return checked
        stamp = checked
    if not signatures:
        keys = " or ".join(auth.signature_keys)
        return AuthFailure("missing_signature", f"{auth.header} has no {keys} signature")
    decoded = [mac for mac in (_decode(auth, text) for text in signatures) if mac is not None]
    return _matches(auth, _payload(auth, body, stamp), decoded, resolve)
