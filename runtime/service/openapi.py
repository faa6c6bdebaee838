"""The OpenAPI 3.1 description of the admin API (served at /api/v1/openapi.json).

It states every answer an operation can give, with the bounds the handlers enforce (`limit`,
`before`, the run statuses), and every refusal as an RFC 9457 problem (`Problem`). The handlers in
`admin.py` and `governance_api.py` import the bounds from here, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, get_args

from runtime import __version__
from runtime.store.base import OutboxStatus, RunStatus

MAX_SEQ = 2**63 - 1  # the largest run sequence number (`before` paging)
REPLAY_OPTIONS = ("from_step", "input", "current_version", "dry_run")

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ROLE_ANSWERS = {
    "viewer": {"401": "no or unknown token"},
    "operator": {"401": "no or unknown token", "403": "the token lacks the operator role"},
}


def _answer(code: str, text: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    ok = code.startswith("2")
    content = (
        {"application/json": {"schema": {"type": "object"}}}
        if ok
        else {"application/problem+json": {"schema": _PROBLEM_REF}}
    )
    answer: dict[str, Any] = {"description": text, "content": content}
    if headers:
        answer["headers"] = headers
    return answer


def _op(
    summary: str,
    role: str,
    params: list[dict[str, Any]] | None = None,
    body: bool = False,
    responses: dict[str, str] | None = None,
    body_schema: str = "Replay",
    headers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    answers = {"200": "OK", "400": _BAD_QUERY, **_ROLE_ANSWERS["operator" if role.startswith("operator") else "viewer"]}
    answers.update(responses or {})
    answers["503"] = "the store is not reachable; retry later"
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs the `{role}` role.",
        "security": [{"bearer": []}],
        "parameters": params or [],
        "responses": {code: _answer(code, text, (headers or {}).get(code)) for code, text in sorted(answers.items())},
    }
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body_schema}"}}},
        }
    return op


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _limit(default: int, high: int) -> dict[str, Any]:
    return _q(
        "limit",
        f"page size, {1} to {high} (default {default})",
        {"type": "integer", "minimum": 1, "maximum": high, "default": default},
    )


def _unix_time(name: str, description: str) -> dict[str, Any]:
    return _q(
        name,
        f"{description}: a Unix time in seconds (an integer or a decimal number, e.g. 1767225600 or "
        "1767225600.5); compared with the run's `created_at`",
        {"type": "number"},
    )


_LOCATION = {"Location": {"description": "the new run", "schema": {"type": "string"}}}
_BAD_QUERY = (
    "a query parameter the operation does not take, or outside its type or bounds (`code`: `bad_query`, "
    "`param` names it)"
)
_BAD_BODY = f"the body is not JSON (`invalid_json`) or not the documented object (`bad_request`); or {_BAD_QUERY}"


def openapi_document() -> dict[str, Any]:
    statuses = list(get_args(RunStatus))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Syncline admin API",
            "version": __version__,
            "description": (
                "Inspect and operate a Syncline deployment: flows, runs, dead letters, replay, the outbox, holds, "
                "business exceptions. "
                "Every refusal is an RFC 9457 problem (`application/problem+json`) whose `code` member is a "
                "stable reason; a method a path does not accept is answered 405 with `Allow`."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details with the extension member `code`",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": {"type": "string", "description": "urn:syncline:problem:<code>"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string", "description": "what was wrong this time"},
                        "instance": {"type": "string", "description": "the request's path"},
                        "code": {"type": "string", "description": "the stable reason, e.g. bad_query, run_not_ended"},
                    },
                },
                "Replay": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "from_step": {
                            "type": "string",
                            "description": "re-run from this step (default: what did not complete)",
                        },
                        "input": {"description": "an edited payload"},
                        "current_version": {"type": "boolean", "description": "run on the flow version deployed now"},
                        "dry_run": {"type": "boolean", "description": "list the side effects instead of causing them"},
                    },
                },
                "Decision": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"comment": {"type": "string", "description": "why, kept in the run's audit trail"}},
                },
            },
        },
        "paths": {
            "/api/v1/flows": {"get": _op("List deployed flows", "viewer")},
            "/api/v1/flows/{name}": {
                "get": _op("A flow's definition and graph", "viewer", [_p("name")], responses={"404": "no such flow"})
            },
            "/api/v1/runs": {
                "get": _op(
                    "List runs, newest first",
                    "viewer",
                    [
                        _q("flow", "flow name"),
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "description": f"comma-separated run statuses, each one of: {', '.join(statuses)}",
                            "style": "form",
                            "explode": False,
                            "schema": {"type": "array", "items": {"type": "string", "enum": statuses}},
                        },
                        _q("correlation_id", "correlation id"),
                        _q(
                            "business_key",
                            "name:value, e.g. order:4711",
                            {"type": "string", "pattern": ":"},
                        ),
                        _q("parent", "a run's id: the runs it started (its events' runs), its children"),
                        _unix_time("since", "runs created at or after"),
                        _unix_time("until", "runs created before"),
                        _limit(50, 500),
                        _q(
                            "before",
                            "paging: runs with seq below this (the previous page's `next_before`)",
                            {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                        ),
                    ],
                )
            },
            "/api/v1/runs/{run_id}": {
                "get": _op(
                    "A run with every step's input, output, timing and error",
                    "viewer",
                    [_p("run_id")],
                    responses={"404": "no such run"},
                )
            },
            "/api/v1/runs/{run_id}/replay": {
                "post": _op(
                    "Replay a run (or list what a replay would do)",
                    "operator",
                    [_p("run_id")],
                    body=True,
                    responses={
                        "200": "the dry run's report",
                        "202": "replay queued",
                        "400": _BAD_BODY,
                        "404": "no such run (`run_not_found`) or no such step in it (`unknown_step`)",
                        "409": "the run has not ended (`run_not_ended`: queued, running, retrying, waiting or held) "
                        "or its flow is not deployed (`flow_not_deployed`)",
                    },
                    headers={"202": _LOCATION},
                )
            },
            "/api/v1/dead-letters": {
                "get": _op(
                    "Dead-lettered runs",
                    "viewer",
                    [
                        _q("flow", "flow name"),
                        _q("include_replayed", "true to include replayed ones", {"type": "boolean", "default": False}),
                        _limit(100, 1000),
                    ],
                )
            },
            "/api/v1/outbox": {
                "get": _op(
                    "Outbox messages of `effect: publish` calls, oldest first",
                    "viewer",
                    [
                        _q(
                            "status",
                            "`failed`: given up after their attempts (requeue them); `pending`: not sent yet; "
                            "`sent`: kept for `service.outbox_retention`",
                            {"type": "string", "enum": list(get_args(OutboxStatus))},
                        ),
                        _q("run_id", "the messages of one run"),
                        _q(
                            "after",
                            "only messages after this `seq` (the page before's `next_after`)",
                            {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                        ),
                        _limit(100, 1000),
                    ],
                )
            },
            "/api/v1/outbox/{message_id}/requeue": {
                "post": _op(
                    "Requeue a given-up outbox message: sent again with the same message id",
                    "operator",
                    [_p("message_id")],
                    responses={"404": "no failed (given-up) message with this id (`not_found`)"},
                )
            },
            "/api/v1/holds": {"get": _op("Runs held for approval", "viewer", [_q("flow", "flow name")])},
            "/api/v1/holds/{run_id}/approve": {
                "post": _op(
                    "Approve a held run: it goes on from the held call",
                    "operator (of the rule's approving team, if it names one)",
                    [_p("run_id")],
                    body=True,
                    body_schema="Decision",
                    responses={
                        "400": _BAD_BODY,
                        "403": "not allowed to decide this hold",
                        "404": "no such run",
                        "409": "the run is not held (`not_held`)",
                    },
                )
            },
            "/api/v1/holds/{run_id}/reject": {
                "post": _op(
                    "Reject a held run: it ends as rejected",
                    "operator (of the rule's approving team, if it names one)",
                    [_p("run_id")],
                    body=True,
                    body_schema="Decision",
                    responses={
                        "400": _BAD_BODY,
                        "403": "not allowed to decide this hold",
                        "404": "no such run",
                        "409": "the run is not held (`not_held`)",
                    },
                )
            },
            "/api/v1/exceptions": {
                "get": _op(
                    "Runs ended by a business exception, by owning team and code",
                    "viewer",
                    [_q("team", "owning team"), _q("code", "exception code"), _q("flow", "flow name")],
                )
            },
            **{
                f"/api/v1/exceptions/{{run_id}}/{action}": {
                    "post": _op(
                        summary,
                        "operator (of the team the exception is routed to, for a team token)",
                        [_p("run_id")],
                        body=True,
                        body_schema="Decision",
                        responses={
                            "400": _BAD_BODY,
                            "403": "a team token of another team than the exception's (`wrong_team`)",
                            "404": "no such run (`not_found`)",
                            "409": "the run did not end by a business exception (`not_exception`) or its exception "
                            "is resolved already (`already_resolved`)",
                        },
                    )
                }
                for action, summary in (
                    ("acknowledge", "Acknowledge a business exception: someone is on it (kept in the audit trail)"),
                    ("resolve", "Resolve a business exception (kept in the audit trail; final)"),
                )
            },
            "/api/v1/reload": {
                "post": _op(
                    "Reload the project (validated first)",
                    "operator",
                    responses={"422": "the new project has problems; the old one keeps serving"},
                )
            },
        },
    }


def query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """(path, method) → the names of the query parameters the operation documents (and so takes)."""
    return {
        (path, method): frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
        for path, item in openapi_document()["paths"].items()
        for method, op in item.items()
    }
