"""P1's outgoing call alone: which HTTP transport should Syncline's http connector ship?

POSTs the mapped P1 order to the loopback sink with 32 concurrent tasks and prints calls/s (median
of the rounds, variants alternating A B A B ...):

  (a) raw clients: httpx.AsyncClient with its default transport (httpcore), httpx.AsyncClient with
      `httpx-aiohttp`'s AiohttpTransport, and a plain aiohttp.ClientSession for reference;
  (b) Syncline's connector (`connectors.http.HttpConnector.call`, the P1 operation): as shipped
      (egress-pinned httpcore transport); the same with `sniffio` importable (httpcore imports it on
      every pool operation and, when it is missing, searches sys.path each time); and with the
      egress-pinned aiohttp transport prototyped in bench/_transports.py.

aiohttp and httpx-aiohttp are installed into the venv when missing (not in --smoke, which skips the
variants that need them).

    python bench/p1_transports.py [--calls 6000] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import types
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import ensure_modules, map_order, median, order_body, rounds_text, sink

Call = Callable[[int], Awaitable[Any]]
CONCURRENCY = 32


def mapped(i: int) -> dict[str, Any]:
    return map_order(json.loads(order_body(i), parse_float=Decimal))


def encoded(i: int) -> bytes:
    import simplejson

    return simplejson.dumps(mapped(i), use_decimal=True, separators=(",", ":")).encode()


async def drive(call: Call, calls: int) -> float:
    """calls/s for `calls` calls spread over CONCURRENCY tasks."""
    numbers = iter(range(calls))

    async def worker() -> None:
        for i in numbers:
            await call(i)

    await call(-1)  # connect and warm up outside the clock
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return calls / (time.perf_counter() - started)


async def raw_httpx(port: int, calls: int, transport: str) -> float:
    import httpx

    _sniffio(transport == "sniffio")

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    kwargs: dict[str, Any] = {"limits": limits}
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        kwargs = {"transport": AiohttpTransport(limits=limits)}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", **kwargs) as client:

        async def call(i: int) -> Any:
            response = await client.post(
                "/sales-orders", content=encoded(i), headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 201, response.status_code
            return response.json()

        try:
            return await drive(call, calls)
        finally:
            _sniffio(False)


async def raw_aiohttp(port: int, calls: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        url = f"http://127.0.0.1:{port}/sales-orders"

        async def call(i: int) -> Any:
            async with session.post(url, data=encoded(i), headers={"Content-Type": "application/json"}) as response:
                assert response.status == 201, response.status
                return json.loads(await response.read())

        return await drive(call, calls)


def _sniffio(present: bool) -> None:
    """Make `import sniffio` succeed (a stand-in) or fail (as when it is not installed)."""
    try:
        import importlib.util

        real = importlib.util.find_spec("sniffio") is not None
    except ValueError:
        real = True
    if real:
        return
    if present:
        module = types.ModuleType("sniffio")
        module.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
        sys.modules["sniffio"] = module
    else:
        sys.modules.pop("sniffio", None)


async def connector(port: int, calls: int, variant: str) -> float:
    from connectors.http import HttpConfig, HttpOperation
    from connectors.http.client import HttpConnector
    from runtime.connector_api import CallRequest, ConnectorContext

    # the connector ships on aiohttp (connectors/http/aiohttp_transport.py) since this was measured;
    # every variant now measures that transport
    _sniffio(variant != "shipped")
    try:
        config = HttpConfig.model_validate({"base_url": f"http://127.0.0.1:{port}", "timeout": "10s"})
        operation = HttpOperation.model_validate(
            {
                "method": "POST",
                "path": "/sales-orders",
                "body": "{{ params.body }}",
                "entity": "order",
                "effect": "create",
            }
        )
        conn = HttpConnector(config, {"create_sales_order": operation}, ConnectorContext(connection="erp"))
        bodies = {i: mapped(i) for i in range(-1, 64)}
        try:

            async def call(i: int) -> Any:
                request = CallRequest(
                    operation="create_sales_order",
                    spec={"method": "POST", "path": "/sales-orders", "body": bodies[i % 64 if i >= 0 else -1]},
                    idempotency_key=f"order-{i}",
                )
                result = await conn.call(request)
                assert result.status == 201, result.status
                return result.output

            return await drive(call, calls)
        finally:
            await conn.aclose()
    finally:
        _sniffio(False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="500 calls, 1 round, no installs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.rounds = 500, 1
    missing = ensure_modules({"aiohttp": "aiohttp", "httpx_aiohttp": "httpx-aiohttp"}, install=not args.smoke)
    variants: dict[str, Callable[[int], Coroutine[Any, Any, float]]] = {}
    with sink() as port:
        variants["(a) httpx default transport (httpcore)"] = lambda n: raw_httpx(port, n, "default")
        variants["(a) httpx default transport, sniffio importable"] = lambda n: raw_httpx(port, n, "sniffio")
        if not missing:
            variants["(a) httpx + httpx-aiohttp transport"] = lambda n: raw_httpx(port, n, "aiohttp")
            variants["(a) aiohttp.ClientSession (reference)"] = lambda n: raw_aiohttp(port, n)
        variants["(b) connector as shipped (pinned aiohttp)"] = lambda n: connector(port, n, "shipped")
        variants["(b) connector, sniffio importable"] = lambda n: connector(port, n, "sniffio")
        if not missing:
            variants["(b) connector as shipped, again"] = lambda n: connector(port, n, "aiohttp")
        figures: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                figures[name].append(asyncio.run(run(args.calls)))
    print(f"P1 outgoing call: {args.calls} POSTs to the loopback sink, {CONCURRENCY} concurrent, {args.rounds} rounds")
    if missing:
        print(f"  skipped: aiohttp variants ({', '.join(missing)} not installed; run without --smoke to install)")
    base = median(figures["(a) httpx default transport (httpcore)"])
    shipped = median(figures["(b) connector as shipped (pinned aiohttp)"])
    for name, values in figures.items():
        ref = base if name.startswith("(a)") else shipped
        print(
            f"  {name:<48} median {median(values):8,.0f} calls/s  {median(values) / ref:5.2f}x"
            f"  (rounds: {rounds_text(values)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
