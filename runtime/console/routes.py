"""The console's routes under /console: pages rendered on the server from Jinja2 templates.

Reading works without JavaScript; the run page alone loads `console.js` to follow a running run over
server-sent events. Data and actions go through the admin API in-process (`runtime/console/api.py`),
with the signed-in token, so the console masks, filters and refuses exactly as `/api/v1` does. Every
response carries a Content-Security-Policy without inline script or style and `frame-ancestors
'none'`; every form a CSRF token; a viewer sees no action and gets 403 when it posts one anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from runtime.console import auth
from runtime.console.api import ApiAnswer, InternalApi, mask_strings
from runtime.console.forms import Form, FormError, read_form
from runtime.console.svg import flow_graph, sparkline
from runtime.console.triage import TriageRefused, triage, triage_state
from runtime.console.views import (
    COLUMNS,
    duration,
    from_iso_input,
    iso_input,
    keys_text,
    lineage,
    overview_counts,
    pretty,
    reconciliations,
    seq_before,
    timeline,
    when,
)
from runtime.expr import loads
from runtime.store.base import FINAL_STATUSES, RunStatus, StoreError

if TYPE_CHECKING:
    from runtime.service.admin import AdminApi
    from runtime.service.governance_api import GovernanceApi
    from runtime.service.service import Service

PREFIX = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
LIVE_POLL = 0.25  # seconds between looks at a running run
LIVE_FOR = 900.0  # an event stream ends after this long; the browser connects again by itself
LINEAGE_MAX = 2000
LINEAGE_DETAILED = 50  # runs of a lineage shown with their steps

Page = Callable[[Request, auth.Session], Awaitable[Response]]


class SecurityHeaders:
    """ASGI wrapper adding the console's security headers (and no-store for pages) to responses."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        static = scope.get("path", "").startswith(PREFIX + "/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *SECURITY_HEADERS]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class Console:
    """The web console of one service: its routes, templates and the in-process admin API."""

    def __init__(self, service: Service, admin: AdminApi, governance: GovernanceApi) -> None:
        self.service = service
        self.admin = admin
        self.governance = governance
        self.api = InternalApi([*admin.routes(), *governance.routes()])
        env = Environment(
            loader=PackageLoader("runtime.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(when=when, duration=duration, pretty=pretty, keys=keys_text, iso_input=iso_input)
        env.globals.update(prefix=PREFIX, columns=list(COLUMNS), statuses=RUN_STATUSES, quote=quote)
        self.env = env

    # ------------------------------------------------------------------------------- plumbing
    def routes(self) -> list[BaseRoute]:
        page, action = self.page, self.action
        inner = [
            Route("/", page(self.overview)),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", action(self.logout, operator=False), methods=["POST"]),
            Route("/flows", page(self.flows)),
            Route("/flows/{name}", page(self.flow)),
            Route("/runs", page(self.runs)),
            Route("/runs/{run_id}", page(self.run)),
            Route("/runs/{run_id}/live", page(self.live)),
            Route("/lineage", page(self.lineage)),
            Route("/dead-letters", page(self.dead_letters)),
            Route("/replay/preview", action(self.replay_preview), methods=["POST"]),
            Route("/replay", action(self.replay), methods=["POST"]),
            Route("/holds", page(self.holds)),
            Route("/holds/{run_id}/{decision}", action(self.decide), methods=["POST"]),
            Route("/exceptions", page(self.exceptions)),
            Route("/exceptions/{run_id}/{action}", action(self.triage), methods=["POST"]),
            Route("/reconciliation", page(self.reconciliation)),
            Mount("/static", StaticFiles(packages=[("runtime.console", "static")])),
        ]
        return [
            Route(PREFIX, _to_overview),
            Mount(PREFIX, app=SecurityHeaders(Router(routes=inner))),
        ]

    def session(self, request: Request) -> auth.Session | None:
        token = request.cookies.get(auth.SESSION_COOKIE, "")
        return self.session_for(token)

    def session_for(self, token: str) -> auth.Session | None:
        if not auth.plausible_token(token):
            return None
        probe = Request({"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]})
        role = self.admin.role(probe)  # exactly the API's check (constant-time, same token lists)
        if role is None:
            return None
        return auth.Session(token, role, self.governance.teams.get(token))

    def render(
        self, template: str, request: Request, session: auth.Session | None, status: int = 200, **ctx: Any
    ) -> Response:
        html = self.env.get_template(template).render(request=request, session=session, path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status)

    def problem_page(self, request: Request, session: auth.Session | None, status: int, message: str) -> Response:
        titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 503: "Unavailable"}
        return self.render("error.j2", request, session, status, title=titles.get(status, "Error"), message=message)

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page for signed-in users (viewers included); others are sent to the sign-in form."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", 303)
            try:
                return await handler(request, session)
            except StoreError:
                return self.problem_page(request, session, 503, "The store is not reachable; try again shortly.")

        return endpoint

    def action(self, handler: Page, *, operator: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """A form post: signed in, the CSRF token right, and (unless `operator=False`) the operator role."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            if session is None:
                return self.problem_page(request, None, 401, "Sign in first.")
            try:
                form = await read_form(request)
            except FormError as exc:
                return self.problem_page(request, session, 400, str(exc))
            if not auth.csrf_ok(session.csrf, _text(form, "csrf")):
                return self.problem_page(
                    request,
                    session,
                    403,
                    "The form has expired or did not come from this console; reload the page and try again.",
                )
            if operator and not session.operator:
                return self.problem_page(
                    request, session, 403, "This needs the operator role; you are signed in as a viewer."
                )
            request.state.form = form
            try:
                return await handler(request, session)
            except StoreError:
                return self.problem_page(request, session, 503, "The store is not reachable; try again shortly.")

        return endpoint

    async def get(self, session: auth.Session, path: str, **query: Any) -> ApiAnswer:
        return self.masked(await self.api.get(path, session.token, query))

    async def post(self, session: auth.Session, path: str, body: Any) -> ApiAnswer:
        return self.masked(await self.api.post(path, session.token, body))

    def masked(self, answer: ApiAnswer) -> ApiAnswer:
        """The API's answer with its text masked once more the way logs are (`Service.redact_text`):
        a masked field quoted inside a message (a dead letter's reason holding a response body, say)
        is replaced too, so a page never shows it."""
        answer.body = mask_strings(answer.body, self.service.redact_text)
        return answer

    # --------------------------------------------------------------------------------- sign in
    async def login_form(self, request: Request) -> Response:
        nonce = auth.login_nonce(request)
        response = self.render(
            "login.j2", request, None, next=_safe_next(request.query_params.get("next")), nonce=nonce
        )
        auth.set_login_nonce(response, request, nonce)
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return self.problem_page(request, None, 400, str(exc))
        nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
        target = _safe_next(_text(form, "next"))
        if not nonce or not auth.csrf_ok(nonce, _text(form, "csrf")):
            return self.problem_page(request, None, 403, "The sign-in form has expired; reload it and try again.")
        session = self.session_for((_text(form, "token") or "").strip())
        if session is None:
            response = self.render("login.j2", request, None, 401, next=target, nonce=nonce, failed=True)
            auth.set_login_nonce(response, request, nonce)
            return response
        response = RedirectResponse(target, 303)
        auth.set_session(response, request, session.token)
        response.delete_cookie(auth.LOGIN_COOKIE, path=auth.COOKIE_PATH)
        return response

    async def logout(self, request: Request, session: auth.Session) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", 303)
        auth.clear_session(response)
        return response

    # ---------------------------------------------------------------------------------- pages
    async def overview(self, request: Request, session: auth.Session) -> Response:
        service = self.service
        now = service.clock.time()
        flows = await overview_counts(service.store, service.plan.flows, now)
        depth = await service.store.dead_letter_depth()
        queue = await service.store.queue_stats(now=now)
        lags = trigger_lags(service.metrics)
        rows = [
            {
                "counts": c,
                "lag": lags.get(c.flow, {}),
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
            k: q.get(k, "").strip() for k in ("flow", "status", "correlation_id", "business_key", "since", "until")
        }
        query: dict[str, Any] = {k: filters[k] for k in ("flow", "status", "correlation_id", "business_key")}
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

    async def run_view(self, session: auth.Session, run_id: str) -> ApiAnswer:
        return await self.get(session, f"/api/v1/runs/{quote(run_id, safe='')}")

    async def run(self, request: Request, session: auth.Session) -> Response:
        run_id = request.path_params["run_id"]
        answer = await self.run_view(session, run_id)
        if not answer.ok:
            return self.problem_page(request, session, answer.status, answer.detail)
        run = answer.body
        record = await self.service.store.get_run(run["id"])
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
            parent=record.parent_run_id if record is not None else None,
            related=lineage(related),
            can_decide=self.can_decide(session, run.get("hold")),
        )

    def tolerances(self, flow_name: str) -> dict[str, dict[str, Any]]:
        flow = self.service.plan.flows.get(flow_name)
        if flow is None:
            return {}
        from runtime.compiler.walk import iter_steps

        out: dict[str, dict[str, Any]] = {}
        for ref in iter_steps(flow.model):
            spec = getattr(ref.step, "reconcile", None)
            if ref.kind == "reconcile" and spec is not None:
                out[ref.id] = {k: str(v) for k, v in spec.tolerance.items()}
        return out

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

    def replay_options(self, form: Form) -> tuple[list[str], dict[str, Any], str | None]:
        """The selected runs, the replay options and what is wrong with the form (None when right)."""
        run_ids = [str(v) for v in form.getlist("run_id") if str(v).strip()]
        options: dict[str, Any] = {}
        from_step = (_text(form, "from_step") or "").strip()
        if from_step:
            options["from_step"] = from_step
        if _text(form, "current_version") == "true":
            options["current_version"] = True
        raw_input = (_text(form, "input") or "").strip()
        if raw_input:
            if len(run_ids) != 1:
                return run_ids, options, "A corrected input can only be given when one run is selected."
            try:
                options["input"] = loads(raw_input)
            except ValueError as exc:
                return run_ids, options, f"The corrected input is not valid JSON: {exc}"
        if not run_ids:
            return run_ids, options, "Select at least one dead letter."
        if len(run_ids) > 100:
            return run_ids, options, "Replay at most 100 runs at once."
        return run_ids, options, None

    async def replay_preview(self, request: Request, session: auth.Session) -> Response:
        run_ids, options, wrong = self.replay_options(request.state.form)
        if wrong:
            return self.problem_page(request, session, 400, wrong)
        previews = []
        for run_id in run_ids:
            answer = await self.post(
                session, f"/api/v1/runs/{quote(run_id, safe='')}/replay", {**options, "dry_run": True}
            )
            previews.append(
                {
                    "run_id": run_id,
                    "ok": answer.ok,
                    "report": answer.body if answer.ok else None,
                    "error": None if answer.ok else answer.detail,
                }
            )
        raw_input = _text(request.state.form, "input") or ""
        return self.render(
            "replay_preview.j2", request, session, previews=previews, options=options, raw_input=raw_input
        )

    async def replay(self, request: Request, session: auth.Session) -> Response:
        run_ids, options, wrong = self.replay_options(request.state.form)
        if wrong:
            return self.problem_page(request, session, 400, wrong)
        results = []
        for run_id in run_ids:
            answer = await self.post(session, f"/api/v1/runs/{quote(run_id, safe='')}/replay", options)
            results.append(
                {
                    "run_id": run_id,
                    "ok": answer.ok,
                    "new_run": answer.body.get("run_id") if answer.ok else None,
                    "error": None if answer.ok else answer.detail,
                }
            )
        status = 200 if all(r["ok"] for r in results) else 409
        return self.render("replay_done.j2", request, session, status, results=results)

    def can_decide(self, session: auth.Session, hold: Any) -> bool:
        """An operator may decide a hold; a team token only a hold for its own team (as the API rules)."""
        if not session.operator or not isinstance(hold, dict):
            return False
        approvers = hold.get("approvers")
        return not (approvers and session.team is not None and session.team != approvers)

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

    async def decide(self, request: Request, session: auth.Session) -> Response:
        run_id, decision = request.path_params["run_id"], request.path_params["decision"]
        if decision not in ("approve", "reject"):
            return self.problem_page(request, session, 404, "A hold is approved or rejected.")
        comment = _text(request.state.form, "comment") or ""
        answer = await self.post(session, f"/api/v1/holds/{quote(run_id, safe='')}/{decision}", {"comment": comment})
        if not answer.ok:
            return self.problem_page(request, session, answer.status, answer.detail)
        return RedirectResponse(f"{PREFIX}/holds?" + urlencode({"done": answer.body["decision"], "run": run_id}), 303)

    async def exceptions(self, request: Request, session: auth.Session) -> Response:
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("team", "code", "flow")}
        answer = await self.get(session, "/api/v1/exceptions", **filters)
        items = answer.body.get("exceptions", []) if answer.ok else []
        store = self.service.store
        for item in items[:200]:
            state = triage_state(await store.get_run(item["run_id"]))
            item["triage"] = self.service.present(state)
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

    async def triage(self, request: Request, session: auth.Session) -> Response:
        run_id, action = request.path_params["run_id"], request.path_params["action"]
        comment = _text(request.state.form, "comment") or ""
        try:
            await triage(
                self.service.store,
                run_id,
                action,
                token=session.token,
                team=session.team,
                comment=comment,
                now=self.service.clock.time(),
            )
        except TriageRefused as exc:
            return self.problem_page(request, session, exc.status, str(exc))
        return RedirectResponse(f"{PREFIX}/exceptions", 303)

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


LAG_GAUGES = (("schedule", "schedule_lag"), ("poll", "poll_lag"), ("source", "source_lag"))


def trigger_lags(metrics: Any) -> dict[str, dict[str, float]]:
    """flow → {"schedule" | "poll" | "source": seconds}, from this node's lag gauges (`/metrics`)."""
    lags: dict[str, dict[str, float]] = {}
    for label, attribute in LAG_GAUGES:
        gauge = getattr(metrics, attribute, None)
        if gauge is None:
            continue
        for family in gauge.collect():
            for sample in family.samples:
                flow = sample.labels.get("flow")
                if flow:
                    entry = lags.setdefault(flow, {})
                    entry[label] = max(entry.get(label, 0.0), float(sample.value))
    return lags


async def _to_overview(request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", 307)


def _text(form: Form, name: str) -> str | None:
    return form.get(name)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"
