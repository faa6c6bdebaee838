"""The ASGI app of `syncline serve`: webhooks (and any trigger kind taking HTTP requests) at the paths
flows declare, /healthz, /readyz, /metrics, the admin API and the web console (/console). Service
start and graceful stop run in the app's lifespan.

Webhook deliveries are the hot path: `ServiceApp` hands every path outside the service's reserved
prefixes to the HTTP intake router directly (runtime/service/http_intake.py, which routes it to the
flow's trigger kind), without walking Starlette's router (the admin API's routes come first) and
middleware stack; everything under the reserved prefixes goes to the Starlette app."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from runtime.compiler.triggers import RESERVED_PREFIXES
from runtime.console import Console
from runtime.expr import dumps
from runtime.service.admin import AdminApi
from runtime.service.gauges import ScrapeGauges
from runtime.service.governance_api import GovernanceApi
from runtime.service.http_intake import FLOW_SCOPE_KEY, HttpIntakeRouter
from runtime.service.metrics import Metrics
from runtime.service.problems import problem, request_path
from runtime.service.service import Service

log = logging.getLogger("syncline.service")


def reload_on_sighup(service: Service) -> None:
    """SIGHUP reloads the project (validated first), where the platform has the signal."""
    import asyncio
    import signal

    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()  # referenced until done, so a reload is never collected midway

    async def reload() -> None:
        for diagnostic in await service.reload():
            log.warning("SIGHUP reload refused: %s", diagnostic.text())

    def handle() -> None:
        task = loop.create_task(reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(sighup, handle)


class ServiceApp:
    """ASGI entry: webhook paths straight to the intake, the rest (and the lifespan) to Starlette."""

    def __init__(self, app: Starlette, intake: HttpIntakeRouter, metrics: Metrics | None = None) -> None:
        self.app = app
        self.intake = intake
        self.metrics = metrics  # webhook request latency, when given

    @property
    def routes(self) -> list[BaseRoute]:
        """The Starlette app's routes (the admin API, health, metrics and the webhook catch-all)."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        request_path.set(path)  # the `instance` of a problem answered to this request
        if scope["type"] != "http" or path.startswith(RESERVED_PREFIXES) or path == "/api":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            response = await self.intake.handle(Request(scope, receive))
        except ClientDisconnect:  # the caller went away before its body arrived: nothing to answer
            log.debug("webhook %s %s: client disconnected before sending its body", scope.get("method"), path)
            return
        except Exception:
            log.exception("webhook %s %s failed", scope.get("method"), path)
            response = problem(500, "internal", "the delivery could not be handled; retry later")
        await response(scope, receive, send)
        if self.metrics is not None:
            flow = scope.get(FLOW_SCOPE_KEY, "")  # set by the router ("" for no route there)
            self.metrics.child(self.metrics.webhook_latency, flow, f"{response.status_code // 100}xx").observe(
                time.perf_counter() - started
            )


def build_app(
    service: Service, *, manage_lifecycle: bool = True, grace: float = 30.0, tokens: dict[str, str] | None = None
) -> ServiceApp:
    intake = HttpIntakeRouter(service)
    admin = AdminApi(service, tokens)
    gauges = ScrapeGauges(service)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        store_ok = service.ready and await service.store.ping()
        missing = [r.describe() for r in service.missing_settings()] if service.ready else []
        ready = bool(store_ok) and not missing
        body = {
            "ready": ready,
            "store": bool(store_ok),
            "flows": len(service.plan.flows) if service.ready else 0,
            "accepting": service.accepting,
            "missing": missing,  # secrets and settings that connections and webhooks need (names only)
        }
        return Response(dumps(body), status_code=200 if ready else 503, media_type="application/json")

    async def metrics(request: Request) -> Response:
        with contextlib.suppress(Exception):  # a store that fails keeps the last values
            await gauges.refresh()
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if manage_lifecycle:
            await service.start()
            reload_on_sighup(service)
        try:
            yield
        finally:
            if manage_lifecycle:
                await service.stop(grace)

    governance = GovernanceApi(service, admin)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *admin.routes(),
        *governance.routes(),
        *Console(service, admin, governance).routes(),  # the web console at /console
    ]
    # webhook paths never reach Starlette (see ServiceApp): what it cannot route under the reserved
    # prefixes is an unknown endpoint (404) or a known one asked with another method (405 with Allow)
    handlers = {404: routing_problem, 405: routing_problem}
    return ServiceApp(Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers), intake, service.metrics)


async def routing_problem(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 as problem details (405 keeps the route's `Allow` header)."""
    assert isinstance(exc, HTTPException)
    path = request.scope.get("path", "")
    if exc.status_code == 405:
        allowed = sorted({m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()})
        return problem(
            405,
            "method_not_allowed",
            f"{request.method} is not accepted at {path}; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
            allowed=allowed,
        )
    return problem(exc.status_code, "not_found", f"no endpoint at {path}")
