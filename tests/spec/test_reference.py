"""Every YAML example on docs/reference.md is a valid document, and every kind, step, trigger and
connector has a section there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.compiler import document_kinds
from runtime.plugins import default_registry
from runtime.spec.documents import KIND_NAMES, parse_document
from runtime.spec.flow import STEP_KINDS, TRIGGER_KINDS
from runtime.spec.yamlload import load_text

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)


def section(heading: str) -> str:
    """The text under `heading` up to the next heading of any level."""
    start = PAGE.index(heading) + len(heading)
    following = re.search(r"^#{1,3} ", PAGE[start:], flags=re.M)
    return PAGE[start : start + following.start()] if following else PAGE[start:]


@pytest.mark.parametrize("key", sorted(STEP_KINDS))
def test_every_step_section_shows_a_document_using_it(key: str) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", section(f"### step: {key}"), flags=re.S)
    assert examples, f"step {key} has no example"
    assert any(re.search(rf"^\s*(- )?{key}:", text, flags=re.M) for text in examples), examples


@pytest.mark.parametrize("key", sorted(TRIGGER_KINDS))
def test_every_trigger_section_shows_a_document_using_it(key: str) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", section(f"### trigger: {key}"), flags=re.S)
    assert examples, f"trigger {key} has no example"
    assert any(re.search(rf"^trigger:\s*(\n\s+)?{{?\s*{key}:", text, flags=re.M) for text in examples), examples


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_validates(index: int) -> None:
    kinds = document_kinds(default_registry())
    for doc in load_text(BLOCKS[index], f"reference.md example {index}"):
        parsed, diagnostics = parse_document(doc, kinds)
        assert parsed is not None, "\n".join(d.text() for d in diagnostics) + "\n" + BLOCKS[index]


def test_every_part_has_a_section() -> None:
    for kind in KIND_NAMES:
        assert f"## kind: {kind}" in PAGE
    for key in STEP_KINDS:
        assert f"### step: {key}" in PAGE
    for key in TRIGGER_KINDS:
        assert f"### trigger: {key}" in PAGE
    for connector in default_registry():
        assert f"### connector: {connector.name}" in PAGE


def _rows(text: str) -> dict[str, list[str]]:
    """Field name → its table cells (type, default, description)."""
    found = re.findall(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| (.*) \|$", text, flags=re.M)
    rows: dict[str, list[str]] = {}
    for name, kind, default, desc in found:  # the section's own table first, then nested ones
        rows.setdefault(name, [kind, default, desc])
    return rows


def test_the_connection_table_lists_type_config_and_operations() -> None:
    rows = _rows(section("## kind: Connection"))
    assert {"name", "system", "type", "config", "operations"} <= set(rows), sorted(rows)
    for connector in default_registry():
        assert f"`{connector.name}`" in rows["type"][0]
    assert rows["type"][1] == "required" and rows["config"][1] == "required"


def test_durations_are_typed_and_shown_as_written() -> None:
    """A duration field is written `10s`: the table says "duration" and shows its default that way."""
    http = _rows(section("#### `config` of `type: http`"))
    assert http["timeout"][:2] == ["duration", "`30s`"], http["timeout"]
    defaults = _rows(section("#### Defaults"))
    assert defaults["timeout"][0] == "duration", defaults["timeout"]
    sql = _rows(section("#### `config` of `type: sql`"))
    assert sql["timeout"][:2] == ["duration", "`30s`"], sql["timeout"]
