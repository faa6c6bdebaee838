"""The console's way into the admin API: in-process calls through the API's own routes.

Every read and every action of the console goes through the same route, role guard, query
checks and masking (`Service.present`, `masker_for_flow`) as `/api/v1` does, so the console can show
no more than the API would show the same token, and refuses what the API refuses. A call is an ASGI
request built in memory (no socket), answered by a router holding the API's routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.routing import BaseRoute, Router
from starlette.types import Message

from runtime.expr import dumps, loads


@dataclass
class ApiAnswer:
    """What the admin API answered: its status and its JSON body (a problem's `detail` on refusals)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The refusal's explanation (problem `detail`), or the status when there is none."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return str(self.body["detail"])
        return f"HTTP {self.status}"


class InternalApi:
    """Calls the admin API's routes in-process with a bearer token."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.router = Router(routes=list(routes))

    async def get(self, path: str, token: str, query: Mapping[str, Any] | None = None) -> ApiAnswer:
        params = {k: str(v) for k, v in (query or {}).items() if v not in (None, "")}
        return await self.call("GET", path, token, params)

    async def post(self, path: str, token: str, body: Any) -> ApiAnswer:
        return await self.call("POST", path, token, {}, dumps(body).encode())

    async def call(self, method: str, path: str, token: str, query: Mapping[str, str], body: bytes = b"") -> ApiAnswer:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(query).encode(),
            "headers": [
                (b"authorization", b"Bearer " + token.encode("ascii")),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("console", 0),
        }
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if sent_body:
                return {"type": "http.disconnect"}
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.router(scope, receive, send)
        raw = b"".join(chunks)
        try:
            answer = loads(raw) if raw else None
        except ValueError:
            answer = {"detail": raw.decode("utf-8", "replace")}
        return ApiAnswer(status, answer)


def mask_strings(value: Any, mask: Callable[[str], str]) -> Any:
    """`value` with `mask` applied to every string in it (keys kept)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_strings(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_strings(v, mask) for v in value]
    return value
