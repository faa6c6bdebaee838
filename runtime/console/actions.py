"""The console's actions: sign in (failed sign-ins limited per client address, `limiter.py`) and
out, replay dead letters after a dry-run preview, decide holds, triage exceptions. Every post is
checked by `ConsoleBase.action` (session, CSRF token, operator role) before it reaches these
handlers, and goes to the admin API in-process, which checks the token's role and team again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime.console import auth
from runtime.console.base import PREFIX, ConsoleBase, form_text, safe_next
from runtime.console.forms import Form, FormError, read_form
from runtime.expr import loads


class Actions(ConsoleBase):
    """Sign-in and the operators' actions."""

    async def login_form(self, request: Request) -> Response:
        nonce = auth.login_nonce(request)
        response = self.render("login.j2", request, None, next=safe_next(request.query_params.get("next")), nonce=nonce)
        auth.set_login_nonce(response, request, nonce)
        return response

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        wait = self.sign_ins.retry_after(client)
        if wait is not None:
            response = self.problem_page(
                request,
                None,
                429,
                f"Too many failed sign-ins from your address; try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            form = await read_form(request)
        except FormError as exc:
            return self.problem_page(request, None, 400, str(exc))
        nonce = request.cookies.get(auth.LOGIN_COOKIE, "")
        target = safe_next(form_text(form, "next"))
        if not nonce or not auth.csrf_ok(nonce, form_text(form, "csrf")):
            return self.problem_page(request, None, 403, "The sign-in form has expired; reload it and try again.")
        session = self.session_for((form_text(form, "token") or "").strip())
        if session is None:
            self.sign_ins.failed(client)
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

    def replay_options(self, form: Form) -> tuple[list[str], dict[str, Any], str | None]:
        """The selected runs, the replay options and what is wrong with the form (None when right)."""
        run_ids = [str(v) for v in form.getlist("run_id") if str(v).strip()]
        options: dict[str, Any] = {}
        from_step = (form_text(form, "from_step") or "").strip()
        if from_step:
            options["from_step"] = from_step
        if form_text(form, "current_version") == "true":
            options["current_version"] = True
        raw_input = (form_text(form, "input") or "").strip()
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
        raw_input = form_text(request.state.form, "input") or ""
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

    async def decide(self, request: Request, session: auth.Session) -> Response:
        run_id, decision = request.path_params["run_id"], request.path_params["decision"]
        if decision not in ("approve", "reject"):
            return self.problem_page(request, session, 404, "A hold is approved or rejected.")
        comment = form_text(request.state.form, "comment") or ""
        answer = await self.post(session, f"/api/v1/holds/{quote(run_id, safe='')}/{decision}", {"comment": comment})
        if not answer.ok:
            return self.problem_page(request, session, answer.status, answer.detail)
        return RedirectResponse(f"{PREFIX}/holds?" + urlencode({"done": answer.body["decision"], "run": run_id}), 303)

    async def triage(self, request: Request, session: auth.Session) -> Response:
        run_id, action = request.path_params["run_id"], request.path_params["action"]
        if action not in ("acknowledge", "resolve"):
            return self.problem_page(request, session, 404, "An exception is acknowledged or resolved.")
        comment = form_text(request.state.form, "comment") or ""
        answer = await self.post(session, f"/api/v1/exceptions/{quote(run_id, safe='')}/{action}", {"comment": comment})
        if not answer.ok:
            return self.problem_page(request, session, answer.status, answer.detail)
        return RedirectResponse(f"{PREFIX}/exceptions", 303)
