"""The two sizes of every scenario: `short` (in `make test`) and `full` (in `make chaos`)."""

from __future__ import annotations

import os

import pytest

CHAOS_ENV = "SYNCLINE_CHAOS"

# parametrise a scenario with these: the full case carries the chaos mark (see conftest.py)
SCALES = [
    pytest.param("short", id="short"),
    pytest.param("full", id="full", marks=pytest.mark.chaos),
]


def chaos_full() -> bool:
    """True under `make chaos` (SYNCLINE_CHAOS=full)."""
    return os.environ.get(CHAOS_ENV, "").lower() == "full"
