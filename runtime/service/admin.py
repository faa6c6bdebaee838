"""The admin API under /api/v1: flows, runs, run detail with steps, replay, dead letters, the outbox
(list, requeue given-up messages), reload.

Every request needs `Authorization: Bearer <token>`. Tokens come from the environment:
`SYNCLINE_VIEWER_TOKENS` (read) and `SYNCLINE_OPERATOR_TOKENS` (read, replay, reload), each a
comma-separated list. With no tokens configured the API refuses everything. Secrets are masked in
every response. The OpenAPI description is public at /api/v1/openapi.json; every refusal is an
RFC 9457 problem (`application/problem+json`) with its stable reason in `code`, and every bound a
query parameter is checked against is stated there (see `runtime/service/openapi.py`).
"""

from __future__ import annotations

import hmac
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.engine.dryrun import dry_run_report
from runtime.engine.replay import ReplayError, ReplayRequest, replay
from runtime.expr import dumps, loads
from runtime.render.graph import render_mermaid
from runtime.render.report import outbox_view
from runtime.service.openapi import MAX_SEQ, REPLAY_OPTIONS, openapi_document, query_parameters
from runtime.service.problems import problem
from runtime.spec.flow import trigger_kind
from runtime.store.base import OutboxStatus, RunFilter, RunRecord, RunStatus, StepRecord, StoreError

if TYPE_CHECKING:
    from runtime.service.service import Service

Endpoint = Callable[[Request], Awaitable[Response]]
ROLES = ("viewer", "operator")
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
OUTBOX_STATUSES: tuple[str, ...] = get_args(OutboxStatus)
QUERY_PARAMETERS = query_parameters()  # (path, method) → the query parameters it takes
# why a replay was refused → the status it is answered with
REPLAY_REFUSALS = {"run_not_found": 404, "run_not_ended": 409, "flow_not_deployed": 409, "unknown_step": 404}


class BadQuery(Exception):
    """A query parameter out of its documented type or bounds (answered 400 `bad_query`)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def query_int(query: Mapping[str, str], name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], or `default` when absent."""
    if name not in query:
        return default
    text = query[name].strip()
    if not text.lstrip("-").isdigit() or len(text) > 20 or not low <= int(text) <= high:
        raise BadQuery(name, f"{name} is an integer from {low} to {high}")
    return int(text)


def query_time(query: Mapping[str, str], name: str) -> float | None:
    """A Unix time in seconds (an integer or decimal number), or None when absent."""
    if name not in query:
        return None
    try:
        value = float(query[name])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadQuery(name, f"{name} is a Unix time in seconds, e.g. 1767225600 or 1767225600.5")
    return value


def query_bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "false")
    if value not in ("true", "false"):
        raise BadQuery(name, f"{name} is true or false")
    return value == "true"


def tokens_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = environ if environ is not None else os.environ
    tokens: dict[str, str] = {}
    for role, var in (("viewer", "SYNCLINE_VIEWER_TOKENS"), ("operator", "SYNCLINE_OPERATOR_TOKENS")):
        for token in (env.get(var) or "").split(","):
            if token.strip():
                tokens[token.strip()] = role
    return tokens


def _json(service: Service, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(service.present(value)), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, reason: str, message: str, **extra: Any) -> Response:
    return problem(status, reason, message, **extra)


def replay_options_problem(options: Any) -> str | None:
    """What is wrong with a replay request body (None when it is right)."""
    if not isinstance(options, dict):
        return "send a JSON object"
    unknown = sorted(set(options) - set(REPLAY_OPTIONS))
    if unknown:
        return f"unknown option {', '.join(unknown)}; options: {', '.join(REPLAY_OPTIONS)}"
    if options.get("from_step") is not None and not isinstance(options["from_step"], str):
        return "from_step is a step id (a string)"
    for flag in ("current_version", "dry_run"):
        if flag in options and not isinstance(options[flag], bool):
            return f"{flag} is true or false"
    return None


def run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow": run.flow,
        "status": run.status,
        "trigger": run.trigger,
        "correlation_id": run.correlation_id,
        "idempotency_key": run.idempotency_key,
        "business_keys": run.business_keys,
        "attempt": run.attempt,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "due_at": run.due_at,
        "replay_of": run.replay_of,
        "parent_run_id": run.parent_run_id,
        "flow_version": run.flow_version,
    }


def step_view(record: StepRecord) -> dict[str, Any]:
    return {
        "step": record.step_key,
        "kind": record.kind,
        "status": record.status,
        "attempts": record.attempts,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_ms": round((record.finished_at - record.started_at) * 1000, 3),
        "input": record.input,
        "output": record.output,
        "error": record.error,
    }


class AdminApi:
    def __init__(self, service: Service, tokens: dict[str, str] | None = None) -> None:
        self.service = service
        self.tokens = tokens if tokens is not None else tokens_from_env()

    def role(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        given = header[7:].strip().encode()
        found = None
        for token, role in self.tokens.items():
            if hmac.compare_digest(token.encode(), given):
                found = role
        return found

    def route(self, path: str, method: str, needed: str, endpoint: Endpoint) -> Route:
        """The route of one documented operation: its role checked, then its query parameters."""
        known = QUERY_PARAMETERS.get((path, method.lower()), frozenset())
        return Route(path, self.guard(needed, endpoint, known), methods=[method])

    def guard(self, needed: str, endpoint: Endpoint, known: frozenset[str] = frozenset()) -> Endpoint:
        async def guarded(request: Request) -> Response:
            role = self.role(request)
            if role is None:
                return problem(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="syncline"'},
                )
            if needed == "operator" and role != "operator":
                return _error(403, "forbidden", "this needs the operator role")
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                expected = ", ".join(sorted(known)) or "none"
                message = f"unknown query parameter {unknown[0]!r}; this endpoint takes: {expected}"
                return _error(400, "bad_query", message, param=unknown[0])
            try:
                return await endpoint(request)
            except BadQuery as exc:
                return _error(400, "bad_query", str(exc), param=exc.param)
            except StoreError:
                self.service.metrics.store_errors.inc()
                return _error(503, "store_unavailable", "the store is not reachable; retry later")

        return guarded

    def routes(self) -> list[Route]:
        r = self.route
        return [
            Route("/api/v1/openapi.json", self.openapi, methods=["GET"]),
            r("/api/v1/flows", "GET", "viewer", self.flows),
            r("/api/v1/flows/{name}", "GET", "viewer", self.flow),
            r("/api/v1/runs", "GET", "viewer", self.runs),
            r("/api/v1/runs/{run_id}", "GET", "viewer", self.run),
            r("/api/v1/runs/{run_id}/replay", "POST", "operator", self.replay),
            r("/api/v1/dead-letters", "GET", "viewer", self.dead_letters),
            r("/api/v1/outbox", "GET", "viewer", self.outbox),
            r("/api/v1/outbox/{message_id}/requeue", "POST", "operator", self.requeue_outbox),
            r("/api/v1/reload", "POST", "operator", self.reload),
        ]

    async def openapi(self, request: Request) -> Response:
        return Response(dumps(openapi_document()), media_type="application/json")

    async def flows(self, request: Request) -> Response:
        plan = self.service.plan
        items = []
        for flow in plan.flows.values():
            model = flow.model
            items.append(
                {
                    "name": flow.name,
                    "version": flow.version,
                    "owner": model.owner,
                    "labels": model.labels,
                    "trigger": (trigger_kind(model.trigger) or "trigger.?").split(".", 1)[1],
                    "steps": len(model.steps),
                    "description": model.description,
                }
            )
        return _json(self.service, {"project_version": plan.version, "flows": items})

    async def flow(self, request: Request) -> Response:
        flow = self.service.plan.flows.get(request.path_params["name"])
        if flow is None:
            return _error(404, "not_found", f"no flow {request.path_params['name']!r}")
        return _json(
            self.service,
            {
                "name": flow.name,
                "version": flow.version,
                "definition": flow.doc.source.data,
                "graph": render_mermaid(flow.model),
            },
        )

    async def runs(self, request: Request) -> Response:
        q = request.query_params
        limit = query_int(q, "limit", 50, 1, 500) or 50
        before = query_int(q, "before", None, 0, MAX_SEQ)
        since = query_time(q, "since")
        until = query_time(q, "until")
        business_key = None
        if "business_key" in q:
            name, sep, value = q["business_key"].partition(":")
            if not sep:
                raise BadQuery("business_key", "business_key is name:value, e.g. order:4711")
            business_key = (name, value)
        statuses = q["status"].split(",") if q.get("status") else None
        unknown = sorted(set(statuses or ()) - set(RUN_STATUSES))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown)
            raise BadQuery("status", f"unknown status {shown}; each is one of {', '.join(RUN_STATUSES)}")
        found = await self.service.store.list_runs(
            RunFilter(
                flow=q.get("flow"),
                status=statuses,
                correlation_id=q.get("correlation_id"),
                business_key=business_key,
                parent=q.get("parent"),
                since=since,
                until=until,
                limit=limit,
                before_seq=before,
            )
        )
        next_page = found[-1].seq if len(found) == limit else None
        return _json(self.service, {"runs": [run_summary(r) for r in found], "next_before": next_page})

    async def run(self, request: Request) -> Response:
        store = self.service.store
        run = await store.get_run(request.path_params["run_id"])
        if run is None:
            return _error(404, "not_found", f"no run {request.path_params['run_id']!r}")
        journal = await store.journal(run.id)
        body = {
            **run_summary(run),
            "input": run.input,
            "output": run.output,
            "error": run.error,
            "response": run.meta.get("response"),
            "hold": run.meta.get("hold"),
            "audit": run.meta.get("audit", []),
            "steps": [step_view(r) for r in journal],
        }
        return _json(self.service, body)

    async def replay(self, request: Request) -> Response:
        raw = await request.body()
        try:
            options = loads(raw) if raw else {}
        except ValueError as exc:
            return _error(400, "invalid_json", str(exc))
        refusal = replay_options_problem(options)
        if refusal is not None:
            return _error(400, "bad_request", refusal)
        req = ReplayRequest(
            run_id=request.path_params["run_id"],
            from_step=options.get("from_step"),
            input=options.get("input"),
            edit_input="input" in options,
            current_version=bool(options.get("current_version")),
            dry_run=bool(options.get("dry_run")),
        )
        service = self.service
        try:
            outcome = await replay(service.executor(service.plan), service.store, req, execute=False)
        except ReplayError as exc:
            return _error(REPLAY_REFUSALS[exc.reason], exc.reason, str(exc))
        if isinstance(outcome, RunRecord):
            service.workers.notify()
            return _json(
                service,
                {"run_id": outcome.id, "replay_of": req.run_id, "status": outcome.status},
                status=202,
                headers={"Location": f"/api/v1/runs/{outcome.id}"},
            )
        report = await dry_run_report(service.store, req, outcome)
        return _json(service, {"dry_run": True, "replay_of": req.run_id, **report.as_dict()})

    async def dead_letters(self, request: Request) -> Response:
        q = request.query_params
        limit = query_int(q, "limit", 100, 1, 1000) or 100
        letters = await self.service.store.list_dead_letters(
            flow=q.get("flow"), include_replayed=query_bool(q, "include_replayed"), limit=limit
        )
        return _json(
            self.service,
            {
                "dead_letters": [
                    {
                        "run_id": d.run_id,
                        "flow": d.flow,
                        "reason": d.reason,
                        "error": d.error,
                        "created_at": d.created_at,
                        "replayed_at": d.replayed_at,
                        "replay_run_id": d.replay_run_id,
                    }
                    for d in letters
                ]
            },
        )

    async def outbox(self, request: Request) -> Response:
        q = request.query_params
        limit = query_int(q, "limit", 100, 1, 1000) or 100
        after = query_int(q, "after", None, 0, MAX_SEQ)
        status = q.get("status")
        if status is not None and status not in OUTBOX_STATUSES:
            raise BadQuery("status", f"unknown status {status!r}; one of {', '.join(OUTBOX_STATUSES)}")
        found = await self.service.store.list_outbox(
            run_id=q.get("run_id"),
            status=status,  # type: ignore[arg-type]  # checked against OUTBOX_STATUSES above
            limit=limit,
            after=after,
        )
        next_page = found[-1].seq if len(found) == limit else None
        return _json(self.service, {"messages": [outbox_view(m) for m in found], "next_after": next_page})

    async def requeue_outbox(self, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        service = self.service
        requeued = await service.store.requeue_outbox(message_id, now=service.clock.time())
        if not requeued:
            detail = (
                f"no given-up (failed) outbox message with id {message_id!r}; pending and sent ones stay as they are"
            )
            return _error(404, "not_found", detail)
        service.outbox.notify()
        return _json(service, {"message_id": message_id, "requeued": [outbox_view(m) for m in requeued]})

    async def reload(self, request: Request) -> Response:
        problems = await self.service.reload()
        if problems:
            return problem(
                422,
                "invalid_project",
                f"the project has {len(problems)} problem(s); the running version keeps serving",
                reloaded=False,
                diagnostics=self.service.present([d.as_dict() for d in problems]),
            )
        return _json(self.service, {"reloaded": True, "project_version": self.service.plan.version})
