"""Schemathesis against the admin API of a real node (uvicorn on a loopback port, the service
started by the app's lifespan): every operation of the OpenAPI document, with generated valid and
invalid data, under all of schemathesis's checks (no 5xx, documented status codes, content types,
headers and bodies, invalid data rejected, valid data accepted, auth enforced, 405 with Allow for
methods a path does not take). Examples per operation are bounded so the run stays short."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis  # the dev extra pins its version
import uvicorn
from hypothesis import HealthCheck, settings

from runtime.demo.simulators import free_port
from runtime.service.app import build_app
from runtime.service.openapi import openapi_document
from runtime.service.service import Service
from tests.service.harness import OPERATOR, TOKENS, write_project

FLOW = """
trigger:
  webhook: {path: /hooks/orders, idempotency_key: "{{ input.id }}"}
steps:
  - id: done
    set: {ok: true}
"""

schema = schemathesis.openapi.from_dict(openapi_document())


class NodeThread:
    """A Syncline node served by uvicorn in its own thread and event loop (lifespan on)."""

    def __init__(self, project: Path) -> None:
        self.port = free_port()
        self.project = project
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        service = Service(self.project, f"sqlite:///{self.project / 'state.db'}", poll_interval=0.05)
        app = build_app(service, manage_lifecycle=True, grace=1.0, tokens=TOKENS)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        asyncio.run(self.server.serve())

    def start(self) -> NodeThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while self.server is None or not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the node did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project = write_project(tmp_path_factory.mktemp("st") / "p", "http://127.0.0.1:9", {"orders": FLOW})
    node = NodeThread(project).start()
    yield f"http://127.0.0.1:{node.port}"
    node.stop()


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_admin_api_conforms_to_its_openapi_document(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {OPERATOR}"})
