"""Helpers for governance tests: small projects written into a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.compiler import check_project
from runtime.errors import Diagnostic

ROOT = Path(__file__).resolve().parents[2]

ERP = """
kind: Connection
name: erp
type: http
config: {base_url: "https://erp.example.com"}
operations:
  find_customer: {method: GET, path: /customers, entity: customer, effect: read}
  upsert_customer: {method: PUT, path: /customers, body: "{{ params.body }}", entity: customer, effect: upsert}
  create_sales_order: {method: POST, path: /sales-orders, body: "{{ params.body }}", entity: order, effect: create}
"""

CRM = """
kind: Connection
name: crm
type: http
config: {base_url: "https://crm.example.com"}
operations:
  update_account: {method: PATCH, path: /accounts, body: "{{ params.body }}", entity: customer, effect: update}
"""

BILLING = """
kind: Connection
name: billing
type: http
config: {base_url: "https://billing.example.com"}
operations:
  update_customer: {method: PATCH, path: /customers, body: "{{ params.body }}", entity: customer, effect: update}
"""

OWNERSHIP = """
kind: Ownership
name: master-data
entities:
  customer:
    owner: erp
    fields: {name: crm, email: crm, credit_status: erp}
    requesters: [crm]
  order: {owner: erp, requesters: [webshop]}
"""

Project = Callable[..., Path]


def write_project(root: Path, files: dict[str, str], project: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: t\n" + textwrap.dedent(project))
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """`project({"flows/a.yaml": "..."}, name="p")` writes a project folder and returns it."""

    def make(files: dict[str, str], name: str = "p", project: str = "") -> Path:
        return write_project(tmp_path / name, files, project)

    return make


def flow(name: str, source: str | None, steps: str, trigger: str = "{manual: {}}") -> str:
    head = f"kind: Flow\nname: {name}\n"
    if source:
        system, entity = source.split("/")
        head += f"source: {{system: {system}, entity: {entity}}}\n"
    return head + f"trigger: {trigger}\nsteps:\n" + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n"


def codes(path: Path, *wanted: str) -> list[Diagnostic]:
    """The diagnostics of the project at `path` whose code is one of `wanted` (all when none given)."""
    found = check_project(path).diagnostics
    return [d for d in found if not wanted or d.code in wanted]
