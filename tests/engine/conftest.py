"""Helpers for executor tests: a plan from YAML text, an executor on a memory store and a test clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.clock import FakeClock
from runtime.compiler import check_project
from runtime.engine.connectors import ConnectorPool, MockedOperations
from runtime.engine.executor import Executor
from runtime.engine.plan import Plan, build_plan
from runtime.secrets import SecretStore
from runtime.spec.flowtest import Mock
from runtime.store.memory import MemoryStore

ERP = """
kind: Connection
name: erp
type: http
config: {base_url: "http://erp.example.com"}
operations:
  read: {method: GET, path: /things, entity: thing, effect: read}
  create: {method: POST, path: /things, body: "{{ params.body }}", entity: thing, effect: create}
  cancel: {method: POST, path: "/things/{{ params.id }}/cancel", entity: thing, effect: command}
  notify: {method: POST, path: /notify, body: "{{ params }}", entity: note, effect: create}
"""


@pytest.fixture
def make_plan(tmp_path: Path) -> Callable[[str], Plan]:
    def build(text: str) -> Plan:
        path = tmp_path / "project.yaml"
        path.write_text(ERP + "---\n" + text)
        result = check_project(path)
        assert not result.errors, "\n".join(d.text() for d in result.errors)
        return build_plan(result)

    return build


class Harness:
    def __init__(
        self,
        plan: Plan,
        mocks: dict[str, Any],
        *,
        secrets: dict[str, str] | None = None,
        inline_retry_limit: float = float("inf"),
        dry_run: bool = False,
    ) -> None:
        self.clock = FakeClock("2026-11-24T10:00:00Z")
        self.store = MemoryStore()
        self.secrets = SecretStore(secrets or {}, environ={})
        self.mocks = MockedOperations(
            {k: Mock.model_validate(v) for k, v in mocks.items()}, self.clock, only_mocks=True
        )
        self.executor = Executor(
            plan,
            self.store,
            clock=self.clock,
            secrets=self.secrets,
            env=lambda name: None,
            connectors=ConnectorPool(plan, self.secrets, lambda name: None, mocks=self.mocks),
            inline_retry_limit=inline_retry_limit,
            dry_run=dry_run,
        )


@pytest.fixture
def harness() -> Callable[..., Harness]:
    return Harness
