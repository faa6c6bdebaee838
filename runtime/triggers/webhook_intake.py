"""The `webhook` kind's HTTP intake: from one request to a committed run, or a precise refusal.

The node routes a request here by method and path (runtime/service/http_intake.py: 404, 405, 503
while shutting down). Then, in this order: size (413, Content-Length first, then counted while the
body streams in; 408 when the whole body takes longer than the project's `service.body_timeout`) →
content type (415) → UTF-8 (400) → strict JSON: no duplicate keys, no NaN/Infinity, bounded depth, no
lone surrogate escape (400, with the string's JSON pointer) → caller authentication over the raw bytes
(401; runtime/triggers/webhook_auth.py) → JSON Schema (422 with the failing path) → the run is
committed through `HttpContext.accept`, which answers: 202 with the run id and a `Location`, the first
run for a repeated idempotency key, 409 for that key with a different body, in `mode: sync` the flow's
`respond` (202 after `sync_timeout`), 503 when the store cannot commit. Refusals are RFC 9457 problem
details with the reason in `code`.

The run keeps the request's headers except credentials (Authorization, cookies, API keys and the
flow's own auth headers), and the caller's correlation id (`X-Correlation-Id`, else the trace id of a
W3C `traceparent`) when it is short printable ASCII.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import TYPE_CHECKING

from runtime.expr import loads
from runtime.expr.jsonvalues import LoneSurrogateError
from runtime.source_api import HttpContext, SecretUnavailable
from runtime.spec.common import parse_duration
from runtime.triggers.webhook_auth import verify

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from runtime.triggers.webhook import WebhookSpec

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|KiB|MiB)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000 * 1000, "kib": 1024, "mib": 1024 * 1024}
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
MAX_JSON_DEPTH = 64
# a caller's correlation id is kept only when it is short, printable ASCII without spaces: it is sent
# on to every system the run calls, and written to the logs
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
NOT_CONFIGURED = "this webhook cannot check deliveries yet: a secret it needs is not set; retry later"


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 256KB, 1MB)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


class WebhookIntake:
    """The intake of one flow's `trigger: {webhook: ...}` (built from its spec once per project load)."""

    def __init__(self, spec: WebhookSpec) -> None:
        self.spec = spec
        self.method: str = spec.method
        self.path: str = spec.path
        self.max_body = parse_size(spec.max_body)
        self.sync_timeout = parse_duration(spec.sync_timeout) if spec.mode == "sync" else None
        auth = spec.auth
        own = set() if auth is None else {auth.header.lower(), (auth.timestamp_header or "").lower()}
        self.hidden = HIDDEN_HEADERS | own  # headers the run does not keep

    async def handle(self, request: Request, ctx: HttpContext) -> Response:
        spec = self.spec
        try:
            body = await read_body(request, self.max_body, ctx.body_timeout)
        except TimeoutError:  # the connection is closed: the rest of the body is not waited for
            message = f"the body did not arrive within {ctx.body_timeout:g} s"
            return ctx.reject(408, "body_timeout", message, headers={"Connection": "close"})
        if body is None:
            return ctx.reject(413, "too_large", f"the body is larger than {spec.max_body}")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            return ctx.reject(415, "unsupported_media_type", "send the body as application/json")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ctx.reject(400, "invalid_utf8", f"the body is not UTF-8 (byte {exc.start})")
        if not _depth_ok(text):
            return ctx.reject(400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            payload = loads(text)
        except LoneSurrogateError as exc:  # valid JSON syntax, but not Unicode text: no store could keep it
            return ctx.reject(400, "invalid_string", str(exc), path=exc.pointer)
        except (ValueError, RecursionError) as exc:
            return ctx.reject(400, "invalid_json", f"the body is not valid JSON: {exc}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if spec.auth is not None:
            try:
                failure = verify(spec.auth, headers, body, now=ctx.clock.time(), resolve=ctx.secret)
            except SecretUnavailable as exc:  # serve --allow-missing-secrets: a secret is not set yet
                ctx.log.error("the webhook of flow %s cannot check deliveries: %s", ctx.flow, exc)
                return ctx.problem(503, "not_configured", NOT_CONFIGURED, retry_after=30)
            if failure is not None:
                return ctx.reject(401, failure.reason, "authentication failed")
        validator = ctx.schema(spec.schema_) if spec.schema_ else None
        if validator is not None:
            errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
            if errors:
                first = errors[0]
                pointer = "/" + "/".join(str(p) for p in first.absolute_path)
                return ctx.reject(422, "schema", first.message, path=pointer)
        correlation = _correlation_id(headers.get("x-correlation-id")) or _trace_id(headers.get("traceparent"))
        hidden = self.hidden
        kept = {k: v for k, v in headers.items() if k not in hidden}
        digest = hashlib.sha256(body).hexdigest()
        return await ctx.accept(
            payload, headers=kept, correlation_id=correlation, digest=digest, sync_timeout=self.sync_timeout
        )


async def read_body(request: Request, limit: int, timeout: float) -> bytes | None:
    """The raw body, or None as soon as it grows past `limit` (checked while streaming).

    Raises `TimeoutError` when the whole body has not arrived within `timeout` seconds (a client
    trickling it in, slowloris), and Starlette's `ClientDisconnect` when the client goes away."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _depth_ok(text: str) -> bool:
    """Whether no array/object is nested deeper than MAX_JSON_DEPTH (brackets in strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:  # cannot be too deep: skip the scan
        return True
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _correlation_id(value: str | None) -> str | None:
    return value if value is not None and _CORRELATION_RE.match(value) else None


def _trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header (None when malformed or all zeros)."""
    match = _TRACEPARENT_RE.match((traceparent or "").strip())
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)
