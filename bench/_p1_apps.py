"""The hand-written P1 baselines: receive the order, validate it (JSON Schema), map it (exact
decimals), POST it to the sink, answer 201 with the ERP id. No journal.

    python bench/_p1_apps.py aiohttp PORT SINK_PORT
    python bench/_p1_apps.py starlette PORT SINK_PORT [default|aiohttp]   (uvicorn + httpx)
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import simplejson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ORDER_SCHEMA, map_order

VALIDATOR = jsonschema.Draft202012Validator(ORDER_SCHEMA)


def parse(body: bytes) -> dict[str, Any] | None:
    try:
        order = json.loads(body, parse_float=Decimal)
    except ValueError:
        return None
    return order if VALIDATOR.is_valid(order) else None


def encode(value: Any) -> bytes:
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":")).encode()


def run_aiohttp(port: int, sink: int) -> None:
    import aiohttp
    from aiohttp import web

    url = f"http://127.0.0.1:{sink}/sales-orders"
    state: dict[str, aiohttp.ClientSession] = {}

    async def hook(request: web.Request) -> web.Response:
        order = parse(await request.read())
        if order is None:
            return web.Response(status=422, body=b'{"error":"invalid"}', content_type="application/json")
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"order-{order['id']}"}
        async with state["session"].post(url, data=encode(map_order(order)), headers=headers) as response:
            if response.status >= 300:
                return web.Response(status=502, body=b'{"error":"erp"}', content_type="application/json")
            erp = json.loads(await response.read())
        return web.Response(status=201, body=encode({"erp_id": erp["id"]}), content_type="application/json")

    async def startup(app: web.Application) -> None:
        state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def cleanup(app: web.Application) -> None:
        await state["session"].close()

    app = web.Application()
    app.router.add_post("/hooks/p1", hook)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def run_starlette(port: int, sink: int, transport: str) -> None:
    import contextlib
    from collections.abc import AsyncIterator

    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    state: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        if transport == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            return httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink}", transport=AiohttpTransport(limits=limits))
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink}", limits=limits)

    async def hook(request: Request) -> Response:
        order = parse(await request.body())
        if order is None:
            return Response(b'{"error":"invalid"}', 422, media_type="application/json")
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"order-{order['id']}"}
        response = await state["client"].post("/sales-orders", content=encode(map_order(order)), headers=headers)
        if response.status_code >= 300:
            return Response(b'{"error":"erp"}', 502, media_type="application/json")
        return Response(encode({"erp_id": response.json()["id"]}), 201, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["client"] = client()
        yield
        await state["client"].aclose()

    app = Starlette(routes=[Route("/hooks/p1", hook, methods=["POST"])], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main(argv: list[str]) -> None:
    kind, port, sink = argv[0], int(argv[1]), int(argv[2])
    if kind == "aiohttp":
        run_aiohttp(port, sink)
    else:
        run_starlette(port, sink, argv[3] if len(argv) > 3 else "default")


if __name__ == "__main__":
    main(sys.argv[1:])
