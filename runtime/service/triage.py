"""Triage of business exceptions: acknowledge (someone is on it) and resolve, as the admin API's
`POST /api/v1/exceptions/{run_id}/acknowledge|resolve` does it (the console calls the API).

The state is kept in the run's `meta["triage"]` and every decision is appended to the run's audit
trail, in the same shape as hold decisions (`runtime/service/governance_api.py`): who (a fingerprint
of the token, never the token), team, when, what and the comment. Only an operator may triage, and a
team token only the exceptions routed to its own team (an operator token without a team, any), as
holds are decided. A resolved exception is not triaged again.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from runtime.store.base import RunRecord, Store

log = logging.getLogger("syncline.governance")

ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved"}


class TriageRefused(Exception):
    """Why a triage action was refused: the HTTP status and stable reason it is answered with."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def triage_state(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    state = run.meta.get("triage")
    return state if isinstance(state, dict) else None


async def triage(
    store: Store, run_id: str, action: str, *, token: str, team: str | None, comment: str, now: float
) -> dict[str, Any]:
    """Record `action` (acknowledge | resolve) on the exception run `run_id`; the audit entry."""
    if action not in ACTIONS:
        raise TriageRefused(404, "not_found", f"unknown action {action!r}; use acknowledge or resolve")
    run = await store.get_run(run_id)
    if run is None:
        raise TriageRefused(404, "not_found", f"no run {run_id!r}")
    if run.status != "exception":
        raise TriageRefused(409, "not_exception", f"run {run_id} is {run.status}, not a business exception")
    owner = (run.error or {}).get("route_to")
    if team is not None and owner and team != owner:
        raise TriageRefused(403, "wrong_team", f"this exception is routed to team {owner!r}")
    current = triage_state(run) or {}
    if current.get("state") == "resolved":
        raise TriageRefused(409, "already_resolved", f"the exception of run {run_id} is resolved already")
    entry = {
        "decision": ACTIONS[action],
        "by": f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}",
        "team": team,
        "at": now,
        "comment": comment,
    }
    meta = {**run.meta, "triage": {"state": ACTIONS[action], **entry}, "audit": [*run.meta.get("audit", []), entry]}
    await store.update_run(run.id, {"meta": meta})
    log.info(
        "exception %s of run %s by %s",
        ACTIONS[action],
        run.id,
        entry["by"],
        extra={"fields": {"audit": entry, "run_id": run.id, "flow": run.flow}},
    )
    return entry
