"""The node's HTTP intake: requests at the paths flows' triggers declare, routed to their kind.

A trigger kind that takes its events as HTTP requests declares `http` (runtime/source_api.py): the
built-in `webhook` (runtime/triggers/webhook_intake.py) or a plugin's. When the project is loaded —
at start and at every reload, in the same step that swaps the plan in, so no request meets a moment
without its route — `build_routes` builds each such flow's `HttpIntake` and its `FlowHttpContext`.
`HttpIntakeRouter.handle` answers 503 while the node shuts down, matches the raw path
(`scope["path"]`) against the routes (404 when nothing is there, 405 with `Allow` when the path takes
other methods) and hands the request to the intake, with the values of `{param}` segments in
`request.path_params`. The context is all an intake can reach: `accept` commits the run through
`Service.accept_request` (idempotency, sync answers) and answers 422 when the flow's keys cannot be
computed and 503 when the store fails; `reject`/`problem` refuse as RFC 9457 problem details
(runtime/service/problems.py), `reject` counted in syncline_webhook_rejections_total{flow,reason}.
Nothing is acknowledged that was not committed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import ExpressionError
from runtime.expr import ENV_KEY, SECRETS_KEY, dumps
from runtime.service.problems import problem
from runtime.source_api import HttpContext, HttpIntake, SecretUnavailable, TriggerType
from runtime.spec.common import parse_duration
from runtime.store.base import StoreError
from runtime.trigger_registry import default_trigger_registry

if TYPE_CHECKING:
    from runtime.engine.plan import CompiledFlow, Plan
    from runtime.service.service import Service

FLOW_SCOPE_KEY = "syncline.flow"  # set in the ASGI scope to the flow a request was routed to (metrics)
_PARAM_RE = re.compile(r"\\\{([^/]*?)\\\}")  # a `{param}` segment, as re.escape writes it


@dataclass(slots=True)
class HttpRoute:
    """One flow's method and path on the node, and the intake that answers there."""

    flow: CompiledFlow
    kind: TriggerType
    method: str
    pattern: re.Pattern[str]
    params: bool  # the path has named `{param}` segments (their values go to request.path_params)
    intake: HttpIntake
    context: FlowHttpContext


def route_pattern(path: str) -> tuple[re.Pattern[str], bool]:
    """The regular expression of a declared path (a trailing / optional; `{name}` matches one segment,
    captured as `name`), and whether it captures anything."""
    names: set[str] = set()

    def segment(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.isidentifier() and name not in names:
            names.add(name)
            return f"(?P<{name}>[^/]+)"
        return "[^/]+"

    regex = "^" + _PARAM_RE.sub(segment, re.escape(path.rstrip("/") or "/")) + "/?$"
    return re.compile(regex), bool(names)


def build_routes(service: Service, plan: Plan) -> list[HttpRoute]:
    """The routes of every flow of `plan` whose trigger kind declares `http`."""
    registry = default_trigger_registry()
    body_timeout = parse_duration(plan.project.service.body_timeout)
    routes = []
    for flow in plan.flows.values():
        trigger = flow.model.trigger
        kind = registry.of(trigger)
        if kind.http is None:
            continue
        intake = kind.http(getattr(trigger, kind.key))
        pattern, params = route_pattern(intake.path)
        context = FlowHttpContext(service, plan, flow, kind, body_timeout)
        routes.append(HttpRoute(flow, kind, intake.method.upper(), pattern, params, intake, context))
    return routes


class FlowHttpContext(HttpContext):
    """What one flow's HTTP intake may do (runtime/source_api.py `HttpContext`), for one project version."""

    def __init__(self, service: Service, plan: Plan, flow: CompiledFlow, kind: TriggerType, body_timeout: float):
        self._service = service
        self._plan = plan
        self._flow = flow
        self._kind = kind.key
        self.flow = flow.name
        self.trigger_id = f"{kind.key}:{flow.name}"
        self.clock = service.clock
        self.log = logging.getLogger(f"syncline.intake.{kind.key}")
        self.body_timeout = body_timeout
        self._schemas: dict[str, Any] = {}

    async def accept(
        self,
        payload: Any,
        *,
        headers: dict[str, str],
        correlation_id: str | None = None,
        digest: str | None = None,
        sync_timeout: float | None = None,
    ) -> Response:
        service = self._service
        try:
            return await service.accept_request(
                self._flow, self._kind, payload, headers, correlation_id, digest, sync_timeout
            )
        except ExpressionError as exc:  # the flow's idempotency/ordering/business keys fail on this payload
            message = service.secrets.redact(str(exc))
            return self.reject(422, "key_error", f"the flow's keys cannot be computed for this body: {message}")
        except StoreError:
            service.metrics.store_errors.inc()
            return problem(503, "store_unavailable", "the event could not be stored; retry later", retry_after=5)

    def reject(
        self, status: int, reason: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> Response:
        self._service.metrics.webhook_rejections.labels(self.flow, reason).inc()
        return problem(status, reason, message, headers=dict(headers) if headers else None, **extra)

    def problem(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> Response:
        return problem(
            status, reason, message, headers=dict(headers) if headers else None, retry_after=retry_after, **extra
        )

    def schema(self, path: str) -> Any:
        if path not in self._schemas:
            context = self._plan.check.context
            schema = context.load_schema(path).schema if context is not None else None
            if schema is None:
                self._schemas[path] = None
            else:
                from runtime.mappings import schema_validator

                self._schemas[path] = schema_validator(schema)
        return self._schemas[path]

    def secret(self, template: str | None) -> str | None:
        try:
            return self._service.render_secret(self._plan, template)
        except ExpressionError as exc:
            raise SecretUnavailable(self._service.secrets.redact(str(exc))) from None

    def redact(self, text: str) -> str:
        return self._service.redact_text(text)

    def count(self, name: str, value: float = 1.0) -> None:
        metrics = self._service.metrics
        metrics.child(metrics.source_events, self.flow, self._kind, name).inc(value)


class HttpIntakeRouter:
    """Requests outside the node's own paths: routed to the intake of the flow that declares them."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def match(self, method: str, path: str) -> tuple[HttpRoute | None, list[str]]:
        """(route, allowed): the route for method+path, and the methods the path accepts."""
        allowed: list[str] = []
        for route in self.service.routes:
            if route.pattern.match(path):
                if route.method == method:
                    return route, [method]
                allowed.append(route.method)
        return None, allowed

    async def handle(self, request: Request) -> Response:
        if not self.service.accepting:
            return problem(503, "shutting_down", "the service is shutting down; retry on another node")
        scope = request.scope
        path = scope["path"]  # (request.url builds a whole URL object)
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
        scope[FLOW_SCOPE_KEY] = route.flow.name
        if route.params:
            found = route.pattern.match(path)
            assert found is not None
            scope["path_params"] = found.groupdict()
        return await route.intake.handle(request, route.context)


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
