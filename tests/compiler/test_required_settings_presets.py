"""A Connection with `preset:` names each secret of its account once: the preset substitutes its account
settings into its config, and `syncline validate --env` used to report every missing one twice (under
`account.…` and under `config.…`)."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.compiler import check_project
from runtime.compiler.settings import missing_settings, required_settings

ZUORA = """\
kind: Connection
name: billing
preset: zuora
account:
  base_url: https://rest.apisandbox.zuora.com
"""

OWN = """\
kind: Connection
name: billing
preset: zuora
account:
  base_url: https://rest.apisandbox.zuora.com
  client_id: "{{ secret('BILLING_ID') }}"
  client_secret: "{{ secret('BILLING_SECRET') }}"
"""


def project(root: Path, connection: str) -> Path:
    (root / "systems").mkdir(parents=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: presets\n")
    (root / "systems" / "billing.yaml").write_text(textwrap.dedent(connection))
    return root


def test_a_presets_default_secrets_are_required_once_under_account(tmp_path: Path) -> None:
    result = check_project(project(tmp_path, ZUORA))
    assert not result.errors, [d.text() for d in result.errors]
    required = required_settings(result.docs)
    assert Counter(r.name for r in required) == {"ZUORA_CLIENT_ID": 1, "ZUORA_CLIENT_SECRET": 1}
    by_name = {r.name: r for r in required}
    assert by_name["ZUORA_CLIENT_ID"].needed_by == "connection billing (account.client_id)"
    assert by_name["ZUORA_CLIENT_ID"].line > 1  # in the project's `account:`, not at the document's first line


def test_the_projects_own_account_secrets_are_required_once_at_their_line(tmp_path: Path) -> None:
    result = check_project(project(tmp_path, OWN))
    required = required_settings(result.docs)
    assert sorted((r.name, r.line) for r in required) == [("BILLING_ID", 6), ("BILLING_SECRET", 7)]
    missing = missing_settings(required, {"BILLING_ID": "id"}.get, {}.get)
    assert [d.message for d in missing] == [
        "secret 'BILLING_SECRET' is not set: needed by connection billing (account.client_secret)"
    ]


def test_validate_env_reports_each_missing_secret_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, ZUORA)
    for name in ("ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "SYNCLINE_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    code = main(["validate", "--env", str(root)])
    out, err = capsys.readouterr()
    assert code != 0
    lines = [line for line in (out + err).splitlines() if "SL052" in line]
    assert len(lines) == 2, lines
    assert sum("'ZUORA_CLIENT_ID'" in line for line in lines) == 1
    assert all("(account." in line for line in lines)
