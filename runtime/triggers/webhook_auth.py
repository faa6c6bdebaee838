"""Webhook caller authentication: HMAC signatures over the raw body, API keys and basic auth.

HMAC: the signature is the hex digest of HMAC(secret, body) — or of `<timestamp>.<body>` when the
flow names a `timestamp_header`, whose Unix time must lie within `tolerance` of now (stale and
future requests are refused). Two secrets are accepted while one is rotated. All comparisons are
constant-time. Failures name the reason (for metrics) but never the expected value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runtime.spec.common import parse_duration
from runtime.spec.flow import WebhookAuth

_ALGORITHMS = {"hmac_sha256": hashlib.sha256, "hmac_sha512": hashlib.sha512}


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


def sign(auth: WebhookAuth, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers a sender would add (used by FlowTests and the demo)."""
    digest = _ALGORITHMS.get(auth.type, hashlib.sha256)
    message = body if auth.timestamp_header is None else f"{timestamp}.".encode() + body
    signature = hmac.new(secret.encode(), message, digest).hexdigest()
    headers = {auth.header: (auth.prefix or "") + signature}
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
    if auth.type in _ALGORITHMS:
        return _verify_hmac(auth, headers, body, now, resolve)
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
        try:
            stamp = int(raw.strip())
        except ValueError:
            return AuthFailure("bad_timestamp", f"{auth.timestamp_header} is not a Unix time")
        if abs(now - stamp) > parse_duration(auth.tolerance):
            return AuthFailure("stale_timestamp", "the signed timestamp is outside the allowed tolerance")
        message = f"{stamp}.".encode() + body
    digest = _ALGORITHMS[auth.type]
    candidates = [s for s in (resolve(auth.secret), resolve(auth.previous_secret)) if s]
    if not candidates:
        return AuthFailure("no_secret", "the webhook secret is not configured")
    ok = False
    for secret in candidates:  # check all, so timing does not tell which one matched
        expected = hmac.new(secret.encode(), message, digest).hexdigest()
        ok = hmac.compare_digest(expected.encode(), given.strip().lower().encode()) or ok
    return None if ok else AuthFailure("bad_signature", "signature does not match")
