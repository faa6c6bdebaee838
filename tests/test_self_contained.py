"""The test suite needs nothing outside the repository: no test, Makefile target or CI script reads the
shared folder that sits beside some checkouts."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# the shared folder one level up (by `..` or by `.parent`) and the like: a path that climbs out of the checkout.
OUTSIDE = re.compile(r"\.\./shared|\.parent\s*/\s*[\"']shared[\"']|/work/shared|parents\[\d\]\s*/\s*[\"']shared[\"']")


def _checked_files() -> list[Path]:
    files = [p for p in (REPO / "tests").rglob("*.py") if p != Path(__file__).resolve()]
    files += [REPO / "Makefile", *sorted((REPO / ".ci").iterdir())]
    return [p for p in files if p.is_file()]


def test_no_test_reads_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _checked_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, "tests must only read files inside the repository:\n" + "\n".join(offenders)


def test_the_jsonpath_compliance_suite_ships_with_its_licence() -> None:
    data = REPO / "tests" / "expr" / "data"
    assert (data / "jsonpath-cts.json").stat().st_size > 100_000
    assert "BSD-2" in (data / "jsonpath-cts.LICENSE").read_text(encoding="utf-8")


def test_ci_runs_the_tests_and_the_linters() -> None:
    """ruff, mypy --strict and the import layering are clean today; CI keeps them so."""
    commands = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in commands and "make lint" in commands, commands
    lint = (REPO / "Makefile").read_text(encoding="utf-8").split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for tool in ("ruff check", "ruff format --check", "mypy", "tests/test_layering.py"):
        assert tool in lint, f"make lint does not run {tool}:\n{lint}"
