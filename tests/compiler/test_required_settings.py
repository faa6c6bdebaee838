"""Which settings and secrets a project needs before it can serve, known from its files: literal
`secret('NAME')` / `env('NAME')` in a Connection or a webhook trigger's `auth`, without a fallback."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runtime.compiler import check_project
from runtime.compiler.settings import missing_settings, required_settings

CONNECTION = """\
kind: Connection
name: crm
type: http
config:
  base_url: "{{ env('CRM_URL') }}"
  auth: {type: bearer, token: "{{ secret('CRM_TOKEN') }}"}
  headers:
    X-Region: "{{ env('REGION') | default('eu') }}"
    X-Tenant: "{{ env('TENANT', 't1') }}"
    X-Both: "{{ env('SHARED') }}-{{ env('SHARED') | d('x') }}"
operations:
  get:
    method: GET
    path: /accounts
    headers: {X-Key: "{{ secret('CRM_OP_KEY') }}"}
    entity: account
    effect: read
"""

FLOW = """\
kind: Flow
name: accounts
trigger:
  webhook:
    path: /hooks/accounts
    auth:
      type: hmac_sha256
      secret: "{{ secret('ACCOUNTS_HOOK_SECRET') }}"
      previous_secret: "{{ secret('ACCOUNTS_HOOK_OLD') }}"
      header: X-Signature
steps:
  - id: read
    call: crm.get
    with: {token: "{{ secret('NOT_STATIC_STEP_PARAM') }}"}
"""


def project(root: Path) -> Path:
    files = {
        "syncline.yaml": "kind: Project\nname: needs\n",
        "systems/crm.yaml": CONNECTION,
        "flows/accounts.yaml": FLOW,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_literal_references_without_fallback_are_required(tmp_path: Path) -> None:
    result = check_project(project(tmp_path))
    assert not result.errors, [d.text() for d in result.errors]
    required = required_settings(result.docs)
    found = {(r.kind, r.name, Path(r.path).name, r.line) for r in required}
    assert found == {
        ("setting", "CRM_URL", "crm.yaml", 5),
        ("secret", "CRM_TOKEN", "crm.yaml", 6),
        ("setting", "SHARED", "crm.yaml", 10),
        ("secret", "CRM_OP_KEY", "crm.yaml", 15),
        ("secret", "ACCOUNTS_HOOK_SECRET", "accounts.yaml", 8),
        ("secret", "ACCOUNTS_HOOK_OLD", "accounts.yaml", 9),
    }
    by_name = {r.name: r for r in required}
    assert "connection crm" in by_name["CRM_TOKEN"].needed_by and "config.auth.token" in by_name["CRM_TOKEN"].needed_by
    assert "webhook of flow accounts" in by_name["ACCOUNTS_HOOK_SECRET"].needed_by


def test_missing_ones_become_diagnostics_with_file_and_line(tmp_path: Path) -> None:
    result = check_project(project(tmp_path))
    secrets = {"CRM_TOKEN": "x" * 8, "ACCOUNTS_HOOK_OLD": "y" * 8}
    settings = {"CRM_URL": "http://127.0.0.1:9"}
    diagnostics = missing_settings(required_settings(result.docs), secrets.get, settings.get)
    shown = {(d.code, d.severity, Path(d.path).name, d.line): d for d in diagnostics}
    assert set(shown) == {
        ("SL052", "error", "crm.yaml", 10),
        ("SL052", "error", "crm.yaml", 15),
        ("SL052", "error", "accounts.yaml", 8),
    }
    hook = shown[("SL052", "error", "accounts.yaml", 8)]
    assert "secret 'ACCOUNTS_HOOK_SECRET' is not set" in hook.message and "webhook of flow accounts" in hook.message
    assert hook.hint and "SYNCLINE_SECRETS_DIR" in hook.hint
    shared = shown[("SL052", "error", "crm.yaml", 10)]
    assert "setting 'SHARED' is not set" in shared.message and "env('SHARED', " in (shared.hint or "")


def test_the_bundled_project_needs_only_its_secrets() -> None:
    result = check_project(Path(__file__).resolve().parents[2])
    names = {(r.kind, r.name) for r in required_settings(result.docs)}
    assert ("secret", "WEBSHOP_HOOK_SECRET") in names and ("secret", "CRM_TOKEN") in names
    assert not [n for kind, n in names if kind == "setting"], names  # every env() there has a default
