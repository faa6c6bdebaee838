"""The serving node's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.service import heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_settling_freezes_what_exists_and_raises_the_thresholds(
    restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(heap.THRESHOLDS_ENV, raising=False)
    kept = [object() for _ in range(3)]
    heap.settle_after_start()
    assert gc.get_threshold() == heap.THRESHOLDS
    assert gc.get_freeze_count() > len(kept)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("700,10,10", (700, 10, 10)),
        (" 5000, 20,30 ", (5000, 20, 30)),
        ("lots", heap.THRESHOLDS),
        ("1,2", heap.THRESHOLDS),
    ],
)
def test_thresholds_come_from_the_environment(
    raw: str, expected: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(heap.THRESHOLDS_ENV, raw)
    assert heap.thresholds() == expected
