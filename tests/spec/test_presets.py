"""System presets: a Connection naming `preset:` gets the preset's fields under its own (mappings merged,
a different `type` replaces, null removes, operations by name); wrong presets and account values are
diagnostics at the Connection's own lines; every shipped preset loads and validates;
`syncline systems list|show`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import runtime.presets as presets_module
from runtime.commands import systems
from runtime.compiler.loader import load_documents
from runtime.errors import Diagnostic, UsageError
from runtime.plugins import default_registry
from runtime.presets import known_presets, load_preset, merge
from runtime.spec.documents import DocumentKinds, ParsedDocument, parse_document
from runtime.spec.yamlload import load_text

KINDS = DocumentKinds(default_registry())


def parse(text: str, path: str = "systems/pay.yaml") -> tuple[ParsedDocument | None, list[Diagnostic]]:
    return parse_document(load_text(text, path)[0], KINDS)


def test_a_stripe_connection_needs_only_the_preset() -> None:
    parsed, diags = parse("kind: Connection\nname: pay\npreset: stripe\n")
    assert diags == [] and parsed is not None
    model = parsed.model
    assert model.type == "http" and model.preset == "stripe"
    assert model.config.base_url == "https://api.stripe.com/v1"
    assert model.config.form_style == "brackets"
    assert model.config.auth.type == "bearer"
    assert model.config.auth.token.get_secret_value() == "{{ secret('STRIPE_API_KEY') }}"
    assert model.config.headers == {"Stripe-Version": "2024-06-20"}
    assert model.operations["list_customers"].pagination.more == "has_more"
    assert model.account["base_url"] == "https://api.stripe.com"


def test_the_projects_fields_win_and_merge() -> None:
    text = """kind: Connection
name: pay
type: http
preset: stripe
account: {base_url: "{{ env('STRIPE_URL') }}", stripe_version: "2023-10-16"}
config:
  timeout: 5s
  auth: {type: basic, username: "{{ secret('STRIPE_API_KEY') }}", password: ""}
  headers: {Stripe-Account: acct_1}
operations:
  list_customers:
    query: {limit: 10}
  get_customer: null
  list_disputes:
    path: /disputes
    entity: payment
"""
    parsed, diags = parse(text)
    assert diags == [], diags
    assert parsed is not None
    model = parsed.model
    assert model.config.base_url == "{{ env('STRIPE_URL') }}/v1"
    assert model.config.timeout == 5.0
    assert model.config.auth.type == "basic"  # another type replaces the preset's auth
    assert model.config.headers == {"Stripe-Version": "2023-10-16", "Stripe-Account": "acct_1"}
    assert model.operations["list_customers"].query == {"limit": "10", "email": "{{ params.email | default(none) }}"}
    assert model.operations["list_customers"].pagination is not None  # patched, not replaced
    assert "get_customer" not in model.operations
    assert model.operations["list_disputes"].path == "/disputes"
    assert "create_customer" in model.operations


def test_an_account_default_may_use_another_account_value() -> None:
    parsed, diags = parse("kind: Connection\nname: shop\npreset: shopify\naccount: {shop: acme}\n")
    assert diags == [] and parsed is not None
    assert parsed.model.config.base_url == "https://acme.myshopify.com/admin/api/2024-07"


def test_merge_rules() -> None:
    base: dict[str, Any] = {"a": {"b": 1, "c": [1, 2]}, "auth": {"type": "x", "k": 1}, "gone": 1}
    patch: dict[str, Any] = {"a": {"c": [3]}, "auth": {"type": "y", "j": 2}, "gone": None}
    assert merge(base, patch) == {"a": {"b": 1, "c": [3]}, "auth": {"type": "y", "j": 2}}
    assert base["a"]["c"] == [1, 2]  # the preset's data is not changed


def test_unknown_preset_names_file_line_field_and_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text("kind: Project\nname: p\n")
    (tmp_path / "systems").mkdir()
    (tmp_path / "systems" / "pay.yaml").write_text("kind: Connection\nname: pay\n\npreset: strpe\n")
    project = load_documents(tmp_path, KINDS)
    (diag,) = project.diagnostics
    assert diag.code == "SL019" and diag.path.endswith("systems/pay.yaml") and (diag.line, diag.col) == (4, 9)
    assert "unknown preset 'strpe'" in diag.message and "preset:" in diag.message
    for name in known_presets():
        assert name in diag.message
    assert diag.hint == "did you mean 'stripe'?"


def test_account_values_unknown_or_missing_and_a_wrong_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop.yaml").write_text(
        """kind: Preset
name: shop
title: Shop
category: ecommerce
description: A test preset.
docs: docs/systems/shop.md
account:
  domain: {description: The shop's domain., example: acme.example.com}
connection:
  type: http
  config: {base_url: "https://${domain}/api"}
"""
    )
    monkeypatch.setattr(presets_module, "PRESET_DIR", tmp_path)
    load_preset.cache_clear()
    try:
        _, diags = parse("kind: Connection\nname: s\npreset: shop\naccount:\n  domian: x\n")
        assert [(d.code, d.line) for d in diags] == [("SL019", 5), ("SL019", 5)]
        assert "unknown key 'domian' in account" in diags[0].message and diags[0].hint == "did you mean 'domain'?"
        assert "missing required field 'domain' in account" in diags[1].message
        assert "acme.example.com" in diags[1].message

        _, diags = parse("kind: Connection\nname: s\ntype: sql\npreset: shop\naccount: {domain: a.example}\n")
        assert [(d.code, d.line) for d in diags] == [("SL019", 3)]
        assert "preset 'shop' is for connector type 'http'" in diags[0].message

        parsed, diags = parse("kind: Connection\nname: s\npreset: shop\naccount: {domain: a.example}\n")
        assert diags == [] and parsed is not None
        assert parsed.model.config.base_url == "https://a.example/api"

        _, diags = parse(
            "kind: Connection\nname: s\ntype: http\naccount: {domain: a}\nconfig: {base_url: 'https://a'}\n"
        )
        assert [d.code for d in diags] == ["SL019"] and "goes with `preset:`" in diags[0].message
    finally:
        load_preset.cache_clear()


def test_an_error_inside_the_merged_fields_points_at_the_projects_key() -> None:
    _, diags = parse("kind: Connection\nname: pay\npreset: stripe\nconfig:\n  timeout: soon\n")
    (diag,) = diags
    assert diag.line == 5 and "config.timeout" in diag.message


@pytest.mark.parametrize("name", known_presets())
def test_every_shipped_preset_loads_and_validates(name: str) -> None:
    preset = load_preset(name)
    assert preset.spec.docs == f"docs/systems/{name}.md"
    assert (Path(__file__).resolve().parents[2] / preset.spec.docs).is_file()
    account = {
        key: setting.example if setting.example is not None else "x"
        for key, setting in preset.spec.account.items()
        if setting.default is None
    }
    text = f"kind: Connection\nname: {name}\npreset: {name}\naccount: {json.dumps(account)}\n"
    parsed, diags = parse(text)
    assert diags == [], [d.text() for d in diags]
    assert parsed is not None and sorted(parsed.model.operations) == preset.operations
    assert preset.operations, "a preset names its operations"


def test_systems_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert systems.run_list(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "stripe" in out and "payments" in out
    assert systems.run_show(argparse.Namespace(name="stripe", json=True)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["base_url"] == "https://api.stripe.com/v1"
    assert shown["operations"]["list_customers"] == {
        "method": "GET",
        "path": "/customers",
        "entity": "customer",
        "effect": "read",
        "pagination": "cursor",
    }
    assert systems.run_show(argparse.Namespace(name="stripe", json=False)) == 0
    assert "preset: stripe" in capsys.readouterr().out
    with pytest.raises(UsageError, match=r"unknown preset 'strip'.*did you mean 'stripe'"):
        systems.run_show(argparse.Namespace(name="strip", json=False))
