"""The console's routes under /console: pages rendered on the server from Jinja2 templates
(`runtime/console/pages.py`), form posts (`actions.py`), static files, all behind `base.py`'s
security headers.

Reading works without JavaScript; the run page alone loads `console.js` to follow a running run over
server-sent events. Data and actions go through the admin API in-process (`runtime/console/api.py`),
with the signed-in token, so the console masks, filters and refuses exactly as `/api/v1` does. Every
response carries a Content-Security-Policy without inline script or style and `frame-ancestors
'none'`; every form a CSRF token; a viewer sees no action and gets 403 when it posts one anyway.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from runtime.console.actions import Actions
from runtime.console.base import PREFIX, SecurityHeaders
from runtime.console.pages import Pages


class Console(Pages, Actions):
    """The web console of one service: its pages, its actions and where they are routed."""

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


async def _to_overview(request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", 307)
