"""Webhook intake: from an HTTP request to a committed run, or a precise refusal.

Order of checks: route (404/405) → size (413, Content-Length first, then counted while the body
streams in) → content type (415) → UTF-8 (400) → strict JSON: no duplicate keys, no NaN/Infinity,
bounded depth, no lone surrogate escape (400, with the string's JSON pointer) → caller
authentication over the raw bytes (401) → JSON Schema (422 with the failing path) → idempotency:
the same key returns the first run's id and status, the same key with a different body is 409 →
the run is committed, and only then answered: 202 with the run id and a `Location`, or in
`mode: sync` the flow's `respond` (falling back to 202 after `sync_timeout`).
A store that cannot commit gives 503; nothing is acknowledged that was not committed.
Refusals are RFC 9457 problem details (`runtime/service/problems.py`) with the reason in `code`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import ExpressionError
from runtime.expr import ENV_KEY, SECRETS_KEY, dumps, loads
from runtime.expr.jsonvalues import LoneSurrogateError
from runtime.service.problems import problem
from runtime.spec.common import parse_duration
from runtime.spec.flow import WebhookSpec, WebhookTrigger
from runtime.store.base import StoreError
from runtime.triggers.webhook_auth import verify

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledFlow, Plan
    from runtime.service.service import Service

log = logging.getLogger("syncline.webhooks")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|KiB|MiB)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000 * 1000, "kib": 1024, "mib": 1024 * 1024}
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
MAX_JSON_DEPTH = 64
# a caller's correlation id is kept only when it is short, printable ASCII without spaces: it is sent
# on to every system the run calls, and written to the logs
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 256KB, 1MB)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


@dataclass
class WebhookRoute:
    flow: CompiledFlow
    spec: WebhookSpec
    pattern: re.Pattern[str]
    max_body: int
    schema: Any
    sync_timeout: float  # seconds a sync caller waits for the flow's answer
    body_timeout: float  # seconds the whole body may take to arrive (the project's `service.body_timeout`)


def build_routes(plan: Plan) -> list[WebhookRoute]:
    routes = []
    body_timeout = parse_duration(plan.project.service.body_timeout)
    for flow in plan.flows.values():
        trigger = flow.model.trigger
        if not isinstance(trigger, WebhookTrigger):
            continue
        spec = trigger.webhook
        regex = "^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(spec.path.rstrip("/") or "/")) + "/?$"
        schema = plan.check.context.load_schema(spec.schema_).schema if spec.schema_ and plan.check.context else None
        from runtime.mappings import schema_validator

        routes.append(
            WebhookRoute(
                flow,
                spec,
                re.compile(regex),
                parse_size(spec.max_body),
                schema_validator(schema) if schema is not None else None,
                parse_duration(spec.sync_timeout),
                body_timeout,
            )
        )
    return routes


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


class WebhookIntake:
    def __init__(self, service: Service) -> None:
        self.service = service

    def match(self, method: str, path: str) -> tuple[WebhookRoute | None, list[str]]:
        """(route, allowed): the route for method+path, and the methods the path accepts."""
        allowed: list[str] = []
        for route in self.service.routes:
            if route.pattern.match(path):
                if route.spec.method == method:
                    return route, [method]
                allowed.append(route.spec.method)
        return None, allowed

    def reject(self, route: WebhookRoute, status: int, reason: str, message: str, **extra: Any) -> Response:
        self.service.metrics.webhook_rejections.labels(route.flow.name, reason).inc()
        return problem(status, reason, message, **extra)

    async def handle(self, request: Request) -> Response:
        service = self.service
        if not service.accepting:
            return problem(503, "shutting_down", "the service is shutting down; retry on another node")
        path = request.scope["path"]  # (request.url builds a whole URL object)
        route, allowed = self.match(request.method, path)
        if route is None:
            if allowed:
                return problem(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not accepted here",
                    headers={"Allow": ", ".join(sorted(set(allowed)))},
                )
            return problem(404, "not_found", f"no webhook at {path}")
        try:
            body = await read_body(request, route.max_body, route.body_timeout)
        except TimeoutError:  # the connection is closed: the rest of the body is not waited for
            return self.reject(
                route,
                408,
                "body_timeout",
                f"the body did not arrive within {route.body_timeout:g} s",
                headers={"Connection": "close"},
            )
        if body is None:
            return self.reject(route, 413, "too_large", f"the body is larger than {route.spec.max_body}")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            return self.reject(route, 415, "unsupported_media_type", "send the body as application/json")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self.reject(route, 400, "invalid_utf8", f"the body is not UTF-8 (byte {exc.start})")
        if not _depth_ok(text):
            return self.reject(route, 400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            payload = loads(text)
        except LoneSurrogateError as exc:  # valid JSON syntax, but not Unicode text: no store could keep it
            return self.reject(route, 400, "invalid_string", str(exc), path=exc.pointer)
        except (ValueError, RecursionError) as exc:
            return self.reject(route, 400, "invalid_json", f"the body is not valid JSON: {exc}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        plan = service.plan
        try:
            failure = verify(
                route.spec.auth,
                headers,
                body,
                now=service.clock.time(),
                resolve=lambda template: service.render_secret(plan, template),
            )
        except ExpressionError as exc:  # a secret the check needs is not set (serve --allow-missing-secrets)
            reason = service.secrets.redact(str(exc))
            log.error("the webhook of flow %s cannot check deliveries: %s", route.flow.name, reason)
            detail = "this webhook cannot check deliveries yet: a secret it needs is not set; retry later"
            return problem(503, "not_configured", detail, retry_after=30)
        if failure is not None:
            return self.reject(route, 401, failure.reason, "authentication failed")
        if route.schema is not None:
            errors = sorted(route.schema.iter_errors(payload), key=lambda e: list(e.absolute_path))
            if errors:
                first = errors[0]
                pointer = "/" + "/".join(str(p) for p in first.absolute_path)
                return self.reject(route, 422, "schema", first.message, path=pointer)
        correlation = _correlation_id(headers.get("x-correlation-id")) or _trace_id(headers.get("traceparent"))
        kept = {k: v for k, v in headers.items() if k not in HIDDEN_HEADERS and not _is_auth_header(route, k)}
        digest = hashlib.sha256(body).hexdigest()
        try:
            return await service.accept(route, payload, kept, correlation, digest)
        except ExpressionError as exc:  # the flow's idempotency/ordering/business keys fail on this payload
            message = service.secrets.redact(str(exc))
            return self.reject(route, 422, "key_error", f"the flow's keys cannot be computed for this body: {message}")
        except StoreError:
            service.metrics.store_errors.inc()
            return problem(503, "store_unavailable", "the event could not be stored; retry later", retry_after=5)


def _is_auth_header(route: WebhookRoute, name: str) -> bool:
    auth = route.spec.auth
    if auth is None:
        return False
    return name in {auth.header.lower(), (auth.timestamp_header or "").lower()}


def _correlation_id(value: str | None) -> str | None:
    return value if value is not None and _CORRELATION_RE.match(value) else None


def _trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header (None when malformed or all zeros)."""
    match = _TRACEPARENT_RE.match((traceparent or "").strip())
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def accepted_response(run_id: str, status: str, *, created: bool) -> Response:
    body = {"run_id": run_id, "status": status, "location": f"/api/v1/runs/{run_id}"}
    return Response(
        dumps(body),
        status_code=202 if created else 200,
        media_type="application/json",
        headers={"Location": f"/api/v1/runs/{run_id}"},
    )


def sync_response(response: dict[str, Any]) -> Response:
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    body = response.get("body")
    return Response(
        dumps(body) if body is not None else b"",
        status_code=int(response.get("status", 200)),
        media_type="application/json",
        headers=headers,
    )


async def wait_for_response(future: asyncio.Future[dict[str, Any]], timeout: float) -> dict[str, Any] | None:
    """The answer, or None after `timeout` seconds (the future is left alone: the run goes on)."""
    done, _pending = await asyncio.wait((future,), timeout=timeout)
    return future.result() if done else None


def secret_renderer(plan: Plan, resolve_secret: Any, resolve_env: Any, template: str | None) -> str | None:
    if template is None:
        return None
    value = plan.engine.compile(template).render({SECRETS_KEY: resolve_secret, ENV_KEY: resolve_env})
    return None if value is None else str(value)
