"""Fixtures of the console suite: a project whose runs end in every way the console shows (succeeded,
dead-lettered, held for finance-ops, a business exception for master-data, a reconciliation, a slow
run), a node serving it on a loopback port, and a signed-in HTTP client."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.harness import OPERATOR, VIEWER, Node, Sink, start_node, until, write_project

CANARY = "qxcv-console-canary-7781"  # a secret value: never in a page
EMAIL = "alice.canary@example.com"  # a masked field's value: never in a page
FINANCE = "finance-team-token-0001"
SALES = "sales-team-token-0001"
MASTER_DATA = "master-data-team-token-0001"
TEAM_TOKENS = f"finance-ops:{FINANCE},sales-ops:{SALES},master-data:{MASTER_DATA}"

ORDERS = """
owner: order-ops
trigger:
  webhook: {path: /hooks/orders, idempotency_key: "{{ input.id }}"}
business_keys: {order: "{{ input.id }}", customer: "{{ input.customer.id }}"}
steps:
  - id: enrich
    set: {signature: "{{ secret('CONSOLE_CANARY') }}", total: "{{ input.total }}"}
  - id: check
    switch:
      - when: "{{ input.customer.id == 'BAD' }}"
        steps:
          - fail: {code: CUSTOMER_UNKNOWN, message: "customer {{ input.customer.id }} unknown", route_to: master-data}
  - id: post
    call: sink.post
    with:
      path: "{{ input.target }}"
      body: {id: "{{ input.id }}", email: "{{ input.customer.email }}", total: "{{ vars.total }}"}
"""

INVOICES = """
owner: finance-ops
trigger:
  webhook: {path: /hooks/invoices}
business_keys: {order: "{{ input.order }}"}
steps:
  - id: invoice
    call: sink.post
    with: {path: invoices, body: {order: "{{ input.order }}"}}
"""

RECON = """
owner: finance-ops
trigger:
  webhook: {path: /hooks/recon}
steps:
  - id: compare
    reconcile:
      left: {call: sink.left, items: "$.records[*]"}
      right: {call: sink.right, items: "$.records[*]"}
      key: "{{ item.id }}"
      fields: [amount, status]
      tolerance: {amount: 0.01}
"""

NIGHTLY = """
owner: finance-ops
trigger:
  schedule: {cron: "0 0 1 1 *"}
steps:
  - id: done
    set: {ok: true}
"""

ANNOUNCE = """
owner: order-ops
trigger:
  webhook: {path: /hooks/announce}
business_keys: {order: "{{ input.id }}"}
steps:
  - id: announce
    emit: {event: order.announced, data: {id: "{{ input.id }}"}}
"""

ON_ANNOUNCED = """
owner: order-ops
trigger:
  event: {name: order.announced}
steps:
  - id: noted
    set: {order: "{{ input.id }}"}
"""

POLICIES = """
kind: Policy
name: controls
rules:
  - id: big-orders
    match: {operation: sink.post}
    when: "{{ params.body.total is defined and params.body.total > 1000 }}"
    action: hold
    approvers: finance-ops
  - id: mask-email
    match: {system: sinkhole}
    mask: ["$.email"]
"""

READS = """
  left:
    method: GET
    path: /left
    entity: ledger
    effect: read
  right:
    method: GET
    path: /right
    entity: ledger
    effect: read
"""


def console_project(root: Path, sink_url: str) -> Path:
    project = write_project(
        root,
        sink_url,
        {
            "orders": ORDERS,
            "invoices": INVOICES,
            "recon": RECON,
            "nightly": NIGHTLY,
            "announce": ANNOUNCE,
            "on-announced": ON_ANNOUNCED,
            "also-on-announced": ON_ANNOUNCED,
        },
    )
    (project / "governance" / "controls.yaml").write_text(POLICIES)
    connection = project / "systems" / "sink.yaml"
    connection.write_text(connection.read_text().rstrip("\n") + "\n" + READS)
    return project


def order(order_id: str, *, customer: str = "C-1", total: int = 10, target: str = "orders") -> dict[str, Any]:
    return {"id": order_id, "customer": {"id": customer, "email": EMAIL}, "total": total, "target": target}


@dataclass
class ConsoleNode:
    """A node serving the console project, with helpers to make runs and sign in."""

    node: Node
    sink: Sink

    @property
    def url(self) -> str:
        return self.node.url

    async def send(self, body: dict[str, Any], path: str = "/hooks/orders") -> str:
        answer = await self.node.client.post(path, json=body)
        assert answer.status_code == 202, answer.text
        run_id: str = answer.json()["run_id"]
        return run_id

    async def finished(self, body: dict[str, Any], path: str = "/hooks/orders") -> dict[str, Any]:
        run_id = await self.send(body, path)
        return await self.node.wait_run(run_id, statuses={"succeeded", "dead_lettered", "held", "exception", "failed"})

    async def announced(self, order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An `announce` run and the two runs its event started (newest first), once all have ended."""
        parent = await self.finished({"id": order_id}, "/hooks/announce")

        async def children() -> list[dict[str, Any]] | None:
            answer = await self.node.client.get(
                "/api/v1/runs", params={"parent": parent["id"]}, headers={"Authorization": f"Bearer {VIEWER}"}
            )
            runs: list[dict[str, Any]] = answer.json()["runs"]
            return runs if len(runs) == 2 and all(r["status"] == "succeeded" for r in runs) else None

        return parent, await until(children)

    @contextlib.asynccontextmanager
    async def signed_in(self, token: str) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client signed in to the console with `token`."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            answer = await sign_in(client, token)
            assert answer.status_code == 303, answer.text
            yield client


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    answer = await client.post("/console/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/console/"})
    return answer


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@pytest.fixture(scope="module")
def sink_server() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture
def sink(sink_server: Sink) -> Sink:
    sink_server.reset()
    sink_server.rule(
        "/left",
        body={
            "records": [
                {"id": "A", "amount": 10.00, "status": "paid"},
                {"id": "B", "amount": 5, "status": "open"},
                {"id": "L", "amount": 1, "status": "open"},
            ]
        },
    )
    sink_server.rule(
        "/right",
        body={
            "records": [
                {"id": "A", "amount": 10.005, "status": "paid"},
                {"id": "B", "amount": 7, "status": "open"},
                {"id": "R", "amount": 1, "status": "open"},
            ]
        },
    )
    return sink_server


@pytest.fixture
async def console(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ConsoleNode]:
    monkeypatch.setenv("CONSOLE_CANARY", CANARY)
    monkeypatch.setenv("SYNCLINE_TEAM_TOKENS", TEAM_TOKENS)
    node = await start_node(console_project(tmp_path / "p", sink.url))
    try:
        yield ConsoleNode(node, sink)
    finally:
        await node.stop()


__all__ = [
    "CANARY",
    "EMAIL",
    "FINANCE",
    "MASTER_DATA",
    "OPERATOR",
    "SALES",
    "VIEWER",
    "ConsoleNode",
    "csrf_of",
    "order",
    "sign_in",
]
