"""pyproject.toml: the licence is an SPDX expression (the table form is deprecated and warns on every
install), with a setuptools that understands it (PEP 639 support arrived in setuptools 77)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639 forbids licence classifiers beside it"


def test_build_backend_understands_the_spdx_form() -> None:
    requirement = next(r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    found = re.fullmatch(r"setuptools\s*>=\s*(\d+)(?:\.\d+)*", requirement)
    assert found and int(found.group(1)) >= 77, requirement
