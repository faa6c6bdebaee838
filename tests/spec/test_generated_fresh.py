"""The committed JSON Schema, reference page and diagnostics page match what the models produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.docgen import generated_files
from runtime.plugins import default_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("relative", sorted(generated_files(default_registry())))
def test_generated_file_is_fresh(relative: str) -> None:
    expected = generated_files(default_registry())[relative]
    committed = (ROOT / relative).read_text(encoding="utf-8") if (ROOT / relative).exists() else ""
    assert committed == expected, f"{relative} is stale: run `make docs` and commit the result"
