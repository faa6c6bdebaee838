"""Every invalid fixture produces the code it names at the line it names; every valid one is clean.

Each file under tests/fixtures/invalid/ starts with `# expect: CODE line N ["hint text"] [warning]
[via test|via env] [in FILE]`; folders hold the same line in an EXPECT file and are validated from a copy
outside any project. `via test` runs the mapping tests, `via env` adds `validate --env`'s check of the
secrets and settings connections and webhooks need, with an empty environment.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from runtime.codes import CODES
from runtime.commands.test import run_mapping_tests
from runtime.compiler import check_project
from runtime.compiler.settings import missing_settings, required_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INVALID = FIXTURES / "invalid"
VALID = FIXTURES / "valid"
EXPECT_RE = re.compile(
    r"expect: (?P<code>SL\d{3}) line (?P<line>\d+)(?: \"(?P<hint>[^\"]+)\")?(?P<warning> warning)?"
    r"(?P<via> via test)?(?P<env> via env)?(?: in (?P<file>\S+))?"
)
# Codes that cannot come from a file in the fixtures folder: none today.
NOT_FROM_FIXTURES: set[str] = set()


def _cases() -> list[Path]:
    return sorted(p for p in INVALID.iterdir() if p.suffix == ".yaml" or (p.is_dir() and (p / "EXPECT").exists()))


def _expectation(case: Path) -> re.Match[str]:
    head = (case / "EXPECT").read_text() if case.is_dir() else case.read_bytes()[:300].decode("utf-8", "replace")
    match = EXPECT_RE.search(head)
    assert match, f"{case.name} has no `# expect: CODE line N` header"
    return match


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_invalid_fixture_reports_its_code_at_its_line(case: Path, tmp_path: Path) -> None:
    expect = _expectation(case)
    target = case
    if case.is_dir():
        target = tmp_path / case.name
        shutil.copytree(case, target)
    started = time.monotonic()
    if expect["via"]:
        diagnostics = run_mapping_tests(target)
    else:
        result = check_project(target)
        diagnostics = result.diagnostics
        if expect["env"]:
            diagnostics = diagnostics + missing_settings(required_settings(result.docs), {}.get, {}.get)
    elapsed = time.monotonic() - started
    wanted_file = expect["file"] or (case.name if case.is_file() else None)
    matches = [
        d
        for d in diagnostics
        if d.code == expect["code"]
        and d.line == int(expect["line"])
        and (wanted_file is None or d.path.endswith(wanted_file))
    ]
    shown = "\n".join(d.text() for d in diagnostics) or "(no diagnostics)"
    assert matches, f"expected {expect['code']} at line {expect['line']} in {case.name}, got:\n{shown}"
    if expect["hint"]:
        assert any(expect["hint"] in (d.hint or "") + d.message for d in matches), shown
    assert matches[0].severity == ("warning" if expect["warning"] else "error")
    assert elapsed < 5, f"{case.name} took {elapsed:.2f}s"  # a hang guard, not a benchmark


def test_fixtures_cover_every_code() -> None:
    covered = {_expectation(case)["code"] for case in _cases()}
    missing = set(CODES) - covered - NOT_FROM_FIXTURES
    assert not missing, f"codes without an invalid fixture: {sorted(missing)}"
    assert len(_cases()) >= 40


@pytest.mark.parametrize("case", sorted(VALID.glob("*.yaml")), ids=lambda p: p.name)
def test_valid_fixture_is_clean(case: Path) -> None:
    diagnostics = check_project(case).diagnostics
    assert diagnostics == [], "\n".join(d.text() for d in diagnostics)
