"""docs/operations.md documents every metric the service exports and every admin API path."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from runtime.service.metrics import Metrics
from runtime.service.openapi import openapi_document

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")


def test_every_metric_is_documented() -> None:
    exported = set()
    for family in text_string_to_metric_families(Metrics().render().decode()):  # HELP/TYPE of every family
        exported.add(family.name + "_total" if family.type == "counter" else family.name)
    assert "syncline_echo_suppressed_total" in exported and "syncline_dead_letter_depth" in exported
    documented = set(re.findall(r"`(syncline_[a-z_]+)`", DOC))
    assert exported - documented == set(), sorted(exported - documented)


def test_every_admin_path_is_documented() -> None:
    for path in openapi_document()["paths"]:
        shown = re.sub(r"\{[^}]+\}", "{id}", path)
        assert shown in DOC or path in DOC, path
