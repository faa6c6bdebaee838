"""The P3 benchmark script runs (smoke mode) and its two mappings agree."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from runtime.expr import ExpressionEngine

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "p3_mapping.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("p3_mapping", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_and_syncline_mappings_agree() -> None:
    bench = _load()
    compiled = ExpressionEngine().compile(bench.MAPPING_FIELDS)
    for order in bench.make_orders(50):
        assert compiled.render({"input": order}) == bench.plain_mapping(order)
    assert isinstance(bench.make_orders(1)[0]["lines"][0]["unit_price"], Decimal)


def test_smoke_run_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load().main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "records/s" in out and "ratio" in out and "µs/order" in out
