"""Fixtures of the service suite: a sink per test and a factory of nodes stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.harness import Node, Sink, start_node

StartNode = Callable[..., Awaitable[Node]]


@pytest.fixture(scope="module")
def sink_server() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def sink(sink_server: Sink) -> Sink:
    """The module's sink with no requests recorded and no rules."""
    sink_server.reset()
    return sink_server


@pytest.fixture
async def nodes() -> AsyncIterator[StartNode]:
    started: list[Node] = []

    async def start(project: Path, store_url: str | None = None, **options: Any) -> Node:
        node = await start_node(project, store_url, **options)
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        await node.stop()
