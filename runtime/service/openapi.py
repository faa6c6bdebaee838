"""The OpenAPI 3.1 description of the admin API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from runtime import __version__


def _op(
    summary: str,
    role: str,
    params: list[dict[str, Any]] | None = None,
    body: bool = False,
    responses: dict[str, str] | None = None,
    body_schema: str = "Replay",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs the `{role}` role.",
        "security": [{"bearer": []}],
        "parameters": params or [],
        "responses": {
            code: {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}
            for code, text in {
                "200": "OK",
                "401": "no or unknown token",
                "503": "store unreachable",
                **(responses or {}),
            }.items()
        },
    }
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body_schema}"}}},
        }
    return op


def _q(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": type_}}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Syncline admin API",
            "version": __version__,
            "description": "Inspect and operate a Syncline deployment: flows, runs, dead letters, replay.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Replay": {
                    "type": "object",
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
                        _q("status", "comma-separated statuses"),
                        _q("correlation_id", "correlation id"),
                        _q("business_key", "name:value, e.g. order:4711"),
                        _q("since", "Unix time", "number"),
                        _q("until", "Unix time", "number"),
                        _q("limit", "page size (max 500)", "integer"),
                        _q("before", "paging: runs with seq below", "integer"),
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
                    responses={"202": "replay queued", "404": "no such run", "409": "the run has not ended"},
                )
            },
            "/api/v1/dead-letters": {
                "get": _op(
                    "Dead-lettered runs",
                    "viewer",
                    [_q("flow", "flow name"), _q("include_replayed", "true to include replayed ones")],
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
                    responses={"403": "not allowed to decide this hold", "404": "no such held run"},
                )
            },
            "/api/v1/holds/{run_id}/reject": {
                "post": _op(
                    "Reject a held run: it ends as rejected",
                    "operator (of the rule's approving team, if it names one)",
                    [_p("run_id")],
                    body=True,
                    body_schema="Decision",
                    responses={"403": "not allowed to decide this hold", "404": "no such held run"},
                )
            },
            "/api/v1/exceptions": {
                "get": _op(
                    "Runs ended by a business exception, by owning team and code",
                    "viewer",
                    [_q("team", "owning team"), _q("code", "exception code"), _q("flow", "flow name")],
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
