"""The console's pages: overview, flows, runs, a run (live over server-sent events), lineage,
dead letters, holds, exceptions and reconciliation results. They read through the admin API
in-process (`ConsoleBase.get`), so they show exactly what the API shows the signed-in token; the
store is read directly only for counts (overview) and the keyset start of time filters.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from runtime.console import auth
from runtime.console.base import ConsoleBase
from runtime.console.sources import source_states
from runtime.console.svg import flow_graph, sparkline
from runtime.console.views import (
    from_iso_input,
    lineage,
    overview_counts,
    reconciliations,
    seq_before,
    timeline,
)
from runtime.store.base import FINAL_STATUSES

LIVE_POLL = 0.25  # seconds between looks at a running run
LIVE_FOR = 900.0  # an event stream ends after this long; the browser connects again by itself
LINEAGE_MAX = 2000
LINEAGE_DETAILED = 50  # runs of a lineage shown with their steps
CHILDREN_SHOWN = 50  # runs a run started shown on its page (the runs page lists them all)


class Pages(ConsoleBase):
    """The pages a viewer may read."""

    async def overview(self, request: Request, session: auth.Session) -> Response:
        service = self.service
        now = service.clock.time()
        flows = await overview_counts(service.store, service.plan.flows, now)
        depth = await service.store.dead_letter_depth()
        queue = await service.store.queue_stats(now=now)
        sources = source_states(service.sources, now, service.metrics)
        rows = [
            {
                "counts": c,
                "source": sources.get(c.flow),
                "spark": sparkline(c.per_hour, f"runs of {c.flow} per hour, last 24 hours"),
                "failspark": sparkline(c.failed_per_hour, f"failed and dead-lettered runs of {c.flow} per hour"),
                "dead_letters": depth.get(c.flow, 0),
            }
            for c in flows
        ]
        return self.render(
            "overview.j2",
            request,
            session,
            rows=rows,
            queue=queue,
            depth=sum(depth.values()),
        )

    async def flows(self, request: Request, session: auth.Session) -> Response:
        answer = await self.get(session, "/api/v1/flows")
        return self.render("flows.j2", request, session, flows=answer.body.get("flows", []) if answer.ok else [])

    async def flow(self, request: Request, session: auth.Session) -> Response:
        name = request.path_params["name"]
        answer = await self.get(session, f"/api/v1/flows/{quote(name, safe='')}")
        flow = self.service.plan.flows.get(name)
        if not answer.ok or flow is None:
            return self.problem_page(request, session, answer.status if not answer.ok else 404, f"No flow {name!r}.")
        runs = await self.get(session, "/api/v1/runs", flow=name, limit=20)
        return self.render(
            "flow.j2",
            request,
            session,
            flow=answer.body,
            model=flow.model,
            graph=flow_graph(flow.model),
            explain=self.explain(flow),
            runs=runs.body.get("runs", []) if runs.ok else [],
        )

    def explain(self, flow: Any) -> str:
        """`syncline explain`'s text for the flow, masked like every value the console shows."""
        from runtime.commands.explain import render_text
        from runtime.compiler.explain import explain_flow

        context = self.service.plan.check.context
        if context is None:
            return ""
        report = self.service.present(explain_flow(context, flow.doc))
        return render_text(report)

    async def runs(self, request: Request, session: auth.Session) -> Response:
        q = request.query_params
        filters = {
            k: q.get(k, "").strip()
            for k in ("flow", "status", "correlation_id", "business_key", "parent", "since", "until")
        }
        query: dict[str, Any] = {k: filters[k] for k in ("flow", "status", "correlation_id", "business_key", "parent")}
        query["limit"] = q.get("limit", "50")
        query["before"] = q.get("before", "")
        try:
            for name in ("since", "until"):
                moment = from_iso_input(filters[name])
                query[name] = f"{moment:.3f}" if moment is not None else ""
                if name == "until" and moment is not None:  # start the keyset near `until` (see seq_before)
                    bound = await seq_before(self.service.store, moment)
                    given = int(query["before"]) if query["before"].isdigit() else None
                    if bound is not None and (given is None or bound < given):
                        query["before"] = str(bound)
        except ValueError:
            return self.problem_page(
                request, session, 400, "Times are dates with hours and minutes, e.g. 2026-12-04T15:30 (UTC)."
            )
        answer = await self.get(session, "/api/v1/runs", **query)
        if not answer.ok:
            return self.render(
                "runs.j2",
                request,
                session,
                400,
                filters=filters,
                runs=[],
                error=answer.detail,
                flows=sorted(self.service.plan.flows),
            )
        kept = {k: v for k, v in filters.items() if v}
        if "limit" in q:
            kept["limit"] = q["limit"]
        older = None
        if answer.body.get("next_before") is not None:
            older = "?" + urlencode({**kept, "before": answer.body["next_before"]})
        return self.render(
            "runs.j2",
            request,
            session,
            filters=filters,
            runs=answer.body["runs"],
            older=older,
            newest="?" + urlencode(kept),
            paged=bool(q.get("before")),
            flows=sorted(self.service.plan.flows),
        )

    async def run(self, request: Request, session: auth.Session) -> Response:
        run_id = request.path_params["run_id"]
        answer = await self.run_view(session, run_id)
        if not answer.ok:
            return self.problem_page(request, session, answer.status, answer.detail)
        run = answer.body
        children = await self.get(session, "/api/v1/runs", parent=run["id"], limit=CHILDREN_SHOWN)
        related: list[Any] = []
        for name, value in (run.get("business_keys") or {}).items():
            found = await self.get(session, "/api/v1/runs", business_key=f"{name}:{value}", limit=20)
            related.extend(r for r in (found.body.get("runs", []) if found.ok else []) if r["id"] != run["id"])
        replayed_as = None
        if run["status"] == "dead_lettered":  # its replay, when it was replayed (the child run)
            letters = await self.get(
                session, "/api/v1/dead-letters", flow=run["flow"], include_replayed="true", limit=1000
            )
            mine = [d for d in (letters.body or {}).get("dead_letters", []) if d["run_id"] == run["id"]]
            replayed_as = mine[0].get("replay_run_id") if mine else None
        return self.render(
            "run.j2",
            request,
            session,
            replayed_as=replayed_as,
            run=run,
            final=run["status"] in FINAL_STATUSES,
            steps=timeline(run),
            reconciled=reconciliations(run, self.tolerances(run["flow"])),
            parent=run.get("parent_run_id"),
            children=list(reversed(children.body.get("runs", []))) if children.ok else [],  # oldest first
            more_children=bool(children.ok and children.body.get("next_before") is not None),
            related=lineage(related),
            can_decide=self.can_decide(session, run.get("hold")),
        )

    async def live(self, request: Request, session: auth.Session) -> Response:
        """Server-sent events: `update` with the run's status and timeline (HTML) when they change,
        then `end` once the run has ended."""
        run_id = request.path_params["run_id"]
        first = await self.run_view(session, run_id)
        if not first.ok:
            return self.problem_page(request, session, first.status, first.detail)

        async def events() -> AsyncIterator[str]:
            last = ""
            loop = asyncio.get_running_loop()
            stop_at = loop.time() + LIVE_FOR
            answer = first
            while True:
                run = answer.body
                html = self.env.get_template("run_live.j2").render(
                    run=run, steps=timeline(run), final=run["status"] in FINAL_STATUSES
                )
                digest = hashlib.sha256(html.encode()).hexdigest()
                if digest != last:
                    last = digest
                    yield "event: update\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
                if run["status"] in FINAL_STATUSES:
                    yield f"event: end\ndata: {run['status']}\n\n"
                    return
                if loop.time() > stop_at or await request.is_disconnected():
                    return
                await asyncio.sleep(LIVE_POLL)
                answer = await self.run_view(session, run_id)
                if not answer.ok:
                    return

        return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    async def lineage(self, request: Request, session: auth.Session) -> Response:
        key = request.query_params.get("key", "").strip()
        if not key:
            return self.render("lineage.j2", request, session, key="", runs=[], searched=False)
        name, sep, value = key.partition(":")
        query = {"business_key": key} if sep and name and value else {"correlation_id": key}
        found: list[Any] = []
        before: Any = None
        while len(found) < LINEAGE_MAX:
            answer = await self.get(session, "/api/v1/runs", limit=500, before=before, **query)
            if not answer.ok:
                return self.render(
                    "lineage.j2", request, session, 400, key=key, runs=[], searched=True, error=answer.detail
                )
            found.extend(answer.body["runs"])
            before = answer.body.get("next_before")
            if before is None:
                break
        ordered = lineage(found)
        details: dict[str, Any] = {}
        for run in ordered[:LINEAGE_DETAILED]:
            detail = await self.run_view(session, run["id"])
            if detail.ok:
                details[run["id"]] = detail.body.get("steps", [])
        return self.render(
            "lineage.j2",
            request,
            session,
            key=key,
            runs=ordered,
            details=details,
            searched=True,
            by="business key" if "business_key" in query else "correlation id",
        )

    async def dead_letters(self, request: Request, session: auth.Session) -> Response:
        flow = request.query_params.get("flow", "")
        replayed = request.query_params.get("include_replayed") == "true"
        answer = await self.get(
            session, "/api/v1/dead-letters", flow=flow, include_replayed="true" if replayed else "", limit=500
        )
        letters = answer.body.get("dead_letters", []) if answer.ok else []
        return self.render(
            "dead_letters.j2",
            request,
            session,
            letters=letters,
            flow=flow,
            replayed=replayed,
            flows=sorted(self.service.plan.flows),
        )

    async def holds(self, request: Request, session: auth.Session) -> Response:
        flow = request.query_params.get("flow", "")
        answer = await self.get(session, "/api/v1/holds", flow=flow)
        holds = answer.body.get("holds", []) if answer.ok else []
        for item in holds:
            item["can_decide"] = self.can_decide(session, item.get("hold"))
        done = request.query_params.get("done", "")
        message = None
        if done in ("approved", "rejected") and request.query_params.get("run"):
            message = f"Run {request.query_params['run']} {done}."
        return self.render(
            "holds.j2", request, session, holds=holds, flow=flow, message=message, flows=sorted(self.service.plan.flows)
        )

    async def exceptions(self, request: Request, session: auth.Session) -> Response:
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("team", "code", "flow")}
        answer = await self.get(session, "/api/v1/exceptions", **filters)
        items = answer.body.get("exceptions", []) if answer.ok else []
        for item in items[:200]:
            item["can_triage"] = session.operator and (
                session.team is None or not item.get("team") or session.team == item["team"]
            )
        return self.render(
            "exceptions.j2",
            request,
            session,
            items=items[:200],
            by_team=answer.body.get("by_team", {}) if answer.ok else {},
            filters=filters,
            total=len(items),
        )

    async def reconciliation(self, request: Request, session: auth.Session) -> Response:
        from runtime.compiler.walk import iter_steps

        flows = [
            f.name
            for f in self.service.plan.flows.values()
            if any(ref.kind == "reconcile" for ref in iter_steps(f.model))
        ]
        results = []
        for name in sorted(flows):
            runs = await self.get(session, "/api/v1/runs", flow=name, limit=10)
            for summary in runs.body.get("runs", []) if runs.ok else []:
                detail = await self.run_view(session, summary["id"])
                if detail.ok:
                    for found in reconciliations(detail.body, self.tolerances(name)):
                        results.append({"run": summary, **found})
        return self.render("reconciliation.j2", request, session, flows=sorted(flows), results=results)
