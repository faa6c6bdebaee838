"""Mapping documents end to end: exact decimals in JSON output, template files confined to mappings/."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.commands.test import mapping_for
from runtime.compiler import check_project
from runtime.expr import dumps, loads


def _project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: t\n")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_three_lines_of_0_1_sum_to_exactly_0_3_in_json(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "mappings/sum.yaml": """
kind: Mapping
name: sum
fields:
  total: "{{ input.lines | sum_of('amount') }}"
  product: "{{ input.lines[0].amount * 3 }}"
"""
        },
    )
    result = check_project(root)
    assert not result.errors
    assert result.context is not None
    mapping = mapping_for(result.context, result.context.named("Mapping")["sum"])
    payload = loads(b'{"lines": [{"amount": 0.1}, {"amount": 0.1}, {"amount": 0.1}]}')
    assert dumps(mapping(payload)) == '{"total":0.3,"product":0.3}'


def test_template_file_renders_json_with_exact_numbers(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "mappings/t.yaml": "kind: Mapping\nname: t\ntemplate: mappings/t.json.j2\n",
            "mappings/t.json.j2": '{"total": {{ input.a + input.b }}, "n": {{ input.items | length }}}',
        },
    )
    result = check_project(root)
    assert not result.errors, [d.text() for d in result.errors]
    assert result.context is not None
    mapping = mapping_for(result.context, result.context.named("Mapping")["t"])
    assert dumps(mapping(loads(b'{"a": 0.1, "b": 0.2, "items": [1, 2]}'))) == '{"total":0.3,"n":2}'


def test_a_symlink_out_of_mappings_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json.j2").write_text('{"x": 1}')
    root = _project(tmp_path / "proj", {"mappings/t.yaml": "kind: Mapping\nname: t\ntemplate: mappings/link.json.j2\n"})
    os.symlink(outside / "secret.json.j2", root / "mappings" / "link.json.j2")
    codes = [(d.code, d.line) for d in check_project(root).diagnostics]
    assert ("SL032", 3) in codes


def test_a_symlinked_folder_out_of_mappings_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json.j2").write_text("{}")
    root = _project(
        tmp_path / "proj",
        {
            "flows/f.yaml": """
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - map: mappings/shared/x.json.j2
"""
        },
    )
    (root / "mappings").mkdir(exist_ok=True)
    os.symlink(outside, root / "mappings" / "shared")
    codes = [(d.code, d.line) for d in check_project(root).diagnostics]
    assert ("SL032", 6) in codes
