"""Helpers for the broker connector tests: reachability, random names, a loopback TCP proxy, waiting.

`TcpProxy` relays bytes between clients and a real broker on the test's own event loop. `cut()`
stops listening and aborts every relayed connection (the broker or the network went away: new
connections are refused); `restore()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.connector_api import CallRequest, ConnectorContext, ConnectorType
from tests.services import require_service


def reachable(port: int, host: str = "127.0.0.1") -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port}: {exc}"


def need(name: str, port: int) -> None:
    """Skip (or fail when services are required) unless the broker listens on 127.0.0.1:`port`."""
    ok, why = reachable(port)
    require_service(name, ok, why)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns a truthy value (which is returned); fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = await check()
            if value:
                return value
        except Exception as exc:
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")
        await asyncio.sleep(interval)


def request(operation: str = "publish", key: str | None = None, **spec: Any) -> CallRequest:
    return CallRequest(
        operation=operation,
        spec=spec,
        params={},
        idempotency_key=key,
        headers={"X-Syncline-Run": "run-1", "X-Correlation-ID": "corr-1"},
    )


def build(connector_type: ConnectorType, config: dict[str, Any], operations: dict[str, dict[str, Any]], **ctx: Any):  # type: ignore[no-untyped-def]
    """A live connector of `connector_type` for a config and operations given as plain data."""
    model = connector_type.config_model.model_validate(config)
    ops = {name: connector_type.operation_model.model_validate(op) for name, op in operations.items()}
    return connector_type.create(model, ops, ConnectorContext(connection=ctx.pop("connection", "broker"), **ctx))


class TcpProxy:
    """A byte relay 127.0.0.1:`port` → 127.0.0.1:`upstream` that can cut and restore the connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [asyncio.ensure_future(_pump(reader, up_writer)), asyncio.ensure_future(_pump(up_reader, writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for w in (writer, up_writer):
                w.transport.abort()
                self._writers.discard(w)
            self._tasks.difference_update(pumps)

    async def cut(self) -> None:
        """Stop listening and abort every relayed connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
