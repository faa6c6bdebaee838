"""Fixtures for the file connector: a project folder in tmp_path with a base folder `data/`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.files import FileConfig, FileConnector, FileOperation, create
from runtime.connector_api import CallRequest, ConnectorContext

Make = Callable[..., FileConnector]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def base(project: Path) -> Path:
    path = project / "data"
    path.mkdir()
    return path


@pytest.fixture
def make(project: Path) -> Make:
    def factory(
        operations: dict[str, dict[str, Any]] | None = None, *, base_dir: str = "data", **config: Any
    ) -> FileConnector:
        context = ConnectorContext(connection="drop", project_dir=str(project))
        ops = {name: FileOperation.model_validate(spec) for name, spec in (operations or {}).items()}
        return create(FileConfig(base_dir=base_dir, **config), ops, context)

    return factory


def call(
    connector: FileConnector,
    operation: str,
    spec: dict[str, Any] | None = None,
    *,
    dry_run: bool = False,
    **params: Any,
) -> Any:
    """Run one call; `spec` stands for the operation's fields as the engine rendered them."""
    request = CallRequest(operation=operation, spec=spec or {}, params=params, dry_run=dry_run)
    return asyncio.run(connector.call(request)).output
