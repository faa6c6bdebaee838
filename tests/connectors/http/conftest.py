"""Fixtures for the http connector tests: real target servers on loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.connectors.http.http_target import App, TargetServer


@pytest.fixture
def serve() -> Iterator[Callable[..., TargetServer]]:
    """Start target servers; all are stopped after the test."""
    servers: list[TargetServer] = []

    def start(app: App | None = None) -> TargetServer:
        server = TargetServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
