"""`ServiceApp`: webhook paths go straight to the intake; reserved paths to the Starlette app."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.service.app import ServiceApp


class Intake:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.paths: list[str] = []

    async def handle(self, request: Request) -> Response:
        self.paths.append(request.url.path)
        if self.fail:
            raise RuntimeError("secret detail that must not leak")
        return Response(b'{"intake":true}', media_type="application/json")


def _app(intake: Intake) -> ServiceApp:
    async def health(request: Request) -> Response:
        return Response(b"starlette")

    routes = [Route("/healthz", health), Route("/api/v1/flows", health), Route("/{path:path}", health)]
    return ServiceApp(Starlette(routes=routes), intake)  # type: ignore[arg-type]


async def _get(app: Any, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
        return await client.request(method, path, content=b"{}")


async def test_webhook_paths_reach_the_intake_and_reserved_paths_the_framework() -> None:
    intake = Intake()
    app = _app(intake)
    assert (await _get(app, "POST", "/hooks/orders")).json() == {"intake": True}
    assert (await _get(app, "GET", "/healthz")).text == "starlette"
    assert (await _get(app, "GET", "/api/v1/flows")).text == "starlette"
    assert (await _get(app, "GET", "/api")).text == "starlette"
    assert intake.paths == ["/hooks/orders"]


async def test_an_intake_crash_is_a_500_problem_without_details() -> None:
    answer = await _get(_app(Intake(fail=True)), "POST", "/hooks/orders")
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal"
    assert "secret detail" not in answer.text and "Traceback" not in answer.text
