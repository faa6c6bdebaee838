"""Helpers for the file trigger tests: a `SourceContext` that keeps runs, keys and the cursor in
memory (the way the node's store does: runs and cursor in one step), and a file connection on a
temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.files import FileConfig, create
from runtime.clock import FakeClock
from runtime.connector_api import ConnectorContext
from runtime.expr import dumps, loads
from runtime.source_api import NO_CURSOR, Accepted, Renderable, SourceEvent
from runtime.triggers.file import FileSpec
from runtime.triggers.file_source import FileSource


class Crash(Exception):
    """Stands for the process dying: raised by `accept` after `crash_after` commits."""


@dataclass
class Journal:
    """What the store would hold across restarts: runs by key, the cursor, the dead letters."""

    runs: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    cursor: Any = None
    dead: list[tuple[SourceEvent, str, str]] = field(default_factory=list)
    commits: int = 0


class FakeContext:
    """A `SourceContext` over a `Journal`; `crash_after` makes the n+1-th commit fail (a kill)."""

    def __init__(self, connector: Any, journal: Journal | None = None, *, clock: FakeClock | None = None) -> None:
        self.flow = "drop"
        self.trigger_id = "file:drop"
        self.clock = clock or FakeClock()
        self.log = logging.getLogger("test.file")
        self.journal = journal or Journal()
        self.crash_after: int | None = None
        self.counts: dict[str, float] = {}
        self.ready_calls = 0
        self.free_slots = 64
        self._connector = connector

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        if self.crash_after is not None and self.journal.commits >= self.crash_after:
            raise Crash("killed")
        out = []
        for event in events:
            assert event.key is not None
            created = event.key not in self.journal.runs
            if created:
                self.journal.runs[event.key] = event.payload
                self.journal.order.append(event.key)
            out.append(Accepted(event, event.key, created))
        if cursor is not NO_CURSOR:
            self.journal.cursor = loads(dumps(cursor))  # as the store gives it back (fractions as Decimal)
        self.journal.commits += 1
        return out

    async def dead_letter(self, event: SourceEvent, reason: str, message: str) -> None:
        self.journal.dead.append((event, reason, message))

    async def cursor(self) -> Any:
        return self.journal.cursor

    async def ready(self) -> None:
        self.ready_calls += 1

    def paused(self) -> bool:
        return False

    def room(self) -> int:
        return self.free_slots

    def progressed(self) -> None:
        pass

    async def connector(self) -> Any:
        return self._connector

    async def call(self, operation: str, params: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Any:
        raise AssertionError("the file source calls no operation")

    def compile(self, template: Any, name: str) -> Renderable:
        raise AssertionError("the file source compiles nothing")

    def scope(self) -> dict[str, Any]:
        return {}

    def redact(self, text: str) -> str:
        return text

    def count(self, name: str, value: float = 1.0) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def local_connector(folder: Path, **config: Any) -> Any:
    """A live `file` connector on `folder`."""
    return create(FileConfig(base_dir=str(folder), **config), {}, ConnectorContext(connection="drop"))


def source(**spec: Any) -> FileSource:
    spec.setdefault("connection", "drop")
    spec.setdefault("stable_for", "0s")
    return FileSource(FileSpec.model_validate(spec))


async def scan(src: FileSource, ctx: FakeContext) -> float:
    """One scan of the source's folder."""
    connector = await ctx.connector()
    return await src.scan(ctx, connector.folder())  # type: ignore[arg-type]


async def run_until(src: FileSource, ctx: FakeContext, done: Any, timeout: float = 10.0) -> None:
    """Run the source until `done()` is true (then cancel it)."""
    task = asyncio.create_task(src.run(ctx))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(timeout):
            while not done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class DropOrigin:
    """Drops files with new content into a folder, for the source conformance kit (runtime/testing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def put(self, count: int) -> list[str]:
        keys = []
        for _ in range(count):
            self.count += 1
            body = f"id,amount\n{self.count},{self.count}.00\n".encode()
            (self.folder / f"drop-{self.count}.csv.part").write_bytes(body)
            (self.folder / f"drop-{self.count}.csv.part").rename(self.folder / f"drop-{self.count}.csv")
            keys.append(hashlib.sha256(body).hexdigest())
        return keys
