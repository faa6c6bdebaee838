"""Governance endpoints of the admin API: holds (approve / reject, audited) and business exceptions
by owning team and code.

    GET  /api/v1/holds?flow=                  viewer    runs held for approval, with the rule and the call
    POST /api/v1/holds/{run_id}/approve       operator  {"comment": "..."}: the run goes on from the held call
    POST /api/v1/holds/{run_id}/reject        operator  {"comment": "..."}: the run ends as `rejected`
    GET  /api/v1/exceptions?team=&code=&flow= viewer    runs ended by a business exception, with their triage
    POST /api/v1/exceptions/{run_id}/acknowledge  operator  {"comment": "..."}: someone is on it
    POST /api/v1/exceptions/{run_id}/resolve      operator  {"comment": "..."}: dealt with (final)

A hold whose rule names `approvers` (a team) can only be decided with an operator token of that team
(`SYNCLINE_TEAM_TOKENS="finance-ops:<token>,..."`) or an operator token without a team. Every decision
is appended to the run's audit trail (who, team, when, decision, rule, comment) and logged. An
exception is triaged the same way (`runtime/service/triage.py`): an operator token, of the team the
exception is routed to when it has a team.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.expr import dumps, loads
from runtime.policy.mask import masker_for_flow
from runtime.service.problems import problem
from runtime.service.triage import TriageRefused, triage, triage_state
from runtime.store.base import RunFilter

if TYPE_CHECKING:
    from runtime.service.admin import AdminApi
    from runtime.service.service import Service

log = logging.getLogger("syncline.governance")


def team_tokens(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = environ if environ is not None else os.environ
    out: dict[str, str] = {}
    for item in (env.get("SYNCLINE_TEAM_TOKENS") or "").split(","):
        team, sep, token = item.partition(":")
        if sep and token.strip():
            out[token.strip()] = team.strip()
    return out


def _error(status: int, reason: str, message: str) -> Response:
    return problem(status, reason, message)


def decision_problem(body: Any) -> str | None:
    """What is wrong with an approve/reject body (None when it is right): {"comment": "..."}."""
    if not isinstance(body, dict):
        return 'send a JSON object, e.g. {"comment": "checked with the customer"}'
    unknown = sorted(set(body) - {"comment"})
    if unknown:
        return f"unknown field {', '.join(unknown)}; the only field is comment"
    if "comment" in body and not isinstance(body["comment"], str):
        return "comment is a string"
    return None


class GovernanceApi:
    def __init__(self, service: Service, admin: AdminApi, teams: dict[str, str] | None = None) -> None:
        self.service = service
        self.admin = admin
        self.teams = teams if teams is not None else team_tokens()
        for token in self.teams:
            admin.tokens.setdefault(token, "operator")

    def routes(self) -> list[Route]:
        r = self.admin.route
        return [
            r("/api/v1/holds", "GET", "viewer", self.holds),
            r("/api/v1/holds/{run_id}/approve", "POST", "operator", self.approve),
            r("/api/v1/holds/{run_id}/reject", "POST", "operator", self.reject),
            r("/api/v1/exceptions", "GET", "viewer", self.exceptions),
            r("/api/v1/exceptions/{run_id}/acknowledge", "POST", "operator", self.acknowledge),
            r("/api/v1/exceptions/{run_id}/resolve", "POST", "operator", self.resolve),
        ]

    def _present(self, flow: str, value: Any) -> Any:
        return self.service.present(masker_for_flow(self.service.plan, flow)(value))

    def _json(self, value: Any, status: int = 200) -> Response:
        return Response(dumps(self.service.present(value)), status_code=status, media_type="application/json")

    async def holds(self, request: Request) -> Response:
        flow = request.query_params.get("flow")
        held = await self.service.store.list_runs(RunFilter(flow=flow, status=["held"], limit=500))
        items = [
            {
                "run_id": r.id,
                "flow": r.flow,
                "created_at": r.created_at,
                "business_keys": r.business_keys,
                "hold": self._present(r.flow, r.meta.get("hold")),
            }
            for r in held
        ]
        return self._json({"holds": items})

    async def approve(self, request: Request) -> Response:
        return await self._decide(request, "approved")

    async def reject(self, request: Request) -> Response:
        return await self._decide(request, "rejected")

    async def _decide(self, request: Request, decision: str) -> Response:
        service = self.service
        store = service.store
        raw = await request.body()
        try:
            body = loads(raw) if raw else {}
        except ValueError as exc:
            return _error(400, "invalid_json", str(exc))
        refusal = decision_problem(body)
        if refusal is not None:
            return _error(400, "bad_request", refusal)
        comment = str(body.get("comment", ""))
        run = await store.get_run(request.path_params["run_id"])
        if run is None:
            return _error(404, "not_found", f"no run {request.path_params['run_id']!r}")
        if run.status != "held":
            return _error(409, "not_held", f"run {run.id} is {run.status}, not held")
        token = request.headers.get("authorization", "")[7:].strip()
        team = self.teams.get(token)
        hold = run.meta.get("hold") or {}
        approvers = hold.get("approvers")
        if approvers and team is not None and team != approvers:
            return _error(403, "wrong_team", f"this hold is for team {approvers!r}")
        now = service.clock.time()
        entry = {
            "decision": decision,
            "by": f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}",
            "team": team,
            "at": now,
            "rule": hold.get("rule"),
            "step": hold.get("step"),
            "comment": comment,
        }
        audit = [*run.meta.get("audit", []), entry]
        if decision == "approved":
            approvals = {**run.meta.get("approvals", {}), hold.get("step", ""): entry}
            meta = {**run.meta, "audit": audit, "approvals": approvals, "hold": None}
            await store.update_run(run.id, {"status": "queued", "meta": meta, "due_at": None})
            service.workers.notify()
        else:
            meta = {**run.meta, "audit": audit, "hold": None}
            await store.update_run(
                run.id,
                {
                    "status": "rejected",
                    "meta": meta,
                    "finished_at": now,
                    "error": {
                        "class": "rejected",
                        "rule": hold.get("rule"),
                        "message": comment or "rejected by an operator",
                    },
                },
            )
            service.metrics.runs.labels(run.flow, "rejected").inc()
        log.info(
            "hold %s of run %s by %s",
            decision,
            run.id,
            entry["by"],
            extra={"fields": {"audit": entry, "run_id": run.id, "flow": run.flow}},
        )
        return self._json({"run_id": run.id, "decision": decision, "audit": entry})

    async def exceptions(self, request: Request) -> Response:
        q = request.query_params
        runs = await self.service.store.list_runs(RunFilter(flow=q.get("flow"), status=["exception"], limit=1000))
        items = []
        for run in runs:
            error = run.error or {}
            if q.get("team") and error.get("route_to") != q["team"]:
                continue
            if q.get("code") and error.get("code") != q["code"]:
                continue
            items.append(
                {
                    "run_id": run.id,
                    "flow": run.flow,
                    "team": error.get("route_to"),
                    "code": error.get("code"),
                    "message": self._present(run.flow, error.get("message")),
                    "business_keys": run.business_keys,
                    "finished_at": run.finished_at,
                    "triage": self._present(run.flow, triage_state(run)),
                }
            )
        by_team: dict[str, dict[str, int]] = {}
        for item in items:
            counts = by_team.setdefault(str(item["team"]), {})
            counts[str(item["code"])] = counts.get(str(item["code"]), 0) + 1
        return self._json({"exceptions": items, "by_team": by_team})

    async def acknowledge(self, request: Request) -> Response:
        return await self._triage(request, "acknowledge")

    async def resolve(self, request: Request) -> Response:
        return await self._triage(request, "resolve")

    async def _triage(self, request: Request, action: str) -> Response:
        raw = await request.body()
        try:
            body = loads(raw) if raw else {}
        except ValueError as exc:
            return _error(400, "invalid_json", str(exc))
        refusal = decision_problem(body)
        if refusal is not None:
            return _error(400, "bad_request", refusal)
        token = request.headers.get("authorization", "")[7:].strip()
        run_id = request.path_params["run_id"]
        try:
            entry = await triage(
                self.service.store,
                run_id,
                action,
                token=token,
                team=self.teams.get(token),
                comment=str(body.get("comment", "")),
                now=self.service.clock.time(),
            )
        except TriageRefused as exc:
            return _error(exc.status, exc.reason, str(exc))
        return self._json({"run_id": run_id, "decision": entry["decision"], "audit": entry})
