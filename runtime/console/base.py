"""The console's plumbing: sessions, rendering, the page and form wrappers, security headers.

`ConsoleBase` holds what every page and action shares: the signed-in session (looked up exactly as
the admin API looks up a token), the Jinja2 environment, the in-process admin API with its answers
masked once more as logs are, and the wrappers that send strangers to the sign-in form (pages) or
check the CSRF token and the operator role (form posts). `SecurityHeaders` adds the
Content-Security-Policy (no inline script or style, `frame-ancestors 'none'`) to every response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from runtime.console import auth
from runtime.console.api import ApiAnswer, InternalApi, mask_strings
from runtime.console.forms import Form, FormError, read_form
from runtime.console.limiter import SignInLimiter
from runtime.console.views import (
    COLUMNS,
    duration,
    iso_input,
    keys_text,
    pretty,
    when,
)
from runtime.store.base import RunStatus, StoreError

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


class ConsoleBase:
    """What the console's pages and actions share."""

    def __init__(self, service: Service, admin: AdminApi, governance: GovernanceApi) -> None:
        self.service = service
        self.admin = admin
        self.governance = governance
        self.api = InternalApi([*admin.routes(), *governance.routes()])
        self.sign_ins = SignInLimiter(lambda: service.clock.time())  # failed sign-ins per client address
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
        titles = {
            400: "Bad request",
            403: "Not allowed",
            404: "Not found",
            409: "Conflict",
            429: "Too many attempts",
            503: "Unavailable",
        }
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
            if not auth.csrf_ok(session.csrf, form_text(form, "csrf")):
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

    async def run_view(self, session: auth.Session, run_id: str) -> ApiAnswer:
        return await self.get(session, f"/api/v1/runs/{quote(run_id, safe='')}")

    def can_decide(self, session: auth.Session, hold: Any) -> bool:
        """An operator may decide a hold; a team token only a hold for its own team (as the API rules)."""
        if not session.operator or not isinstance(hold, dict):
            return False
        approvers = hold.get("approvers")
        return not (approvers and session.team is not None and session.team != approvers)

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


def form_text(form: Form, name: str) -> str | None:
    return form.get(name)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"
