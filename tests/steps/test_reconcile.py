"""The `reconcile` step: records of two systems matched by key, fields compared with tolerances."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runtime.engine.plan import Plan
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]

FLOW = """
kind: Flow
name: rec
trigger: {manual: {}}
steps:
  - id: compare
    reconcile:
      left: {call: erp.read, items: "$.items[*]"}
      right: {call: erp.read_other, items: "$.records[*]"}
      key: "{{ item.number }}"
      fields: [total, currency, status]
      tolerance: {total: 0.01}
"""

CONNECTION_EXTRA = """
kind: Connection
name: erp2
type: http
config: {base_url: "http://erp2.example.com"}
operations:
  list: {method: GET, path: /records, entity: thing, effect: read}
"""


def flow() -> str:
    return FLOW.replace("erp.read_other", "erp2.list") + "---\n" + CONNECTION_EXTRA


async def reconcile(make_plan: Build, harness: Callable[..., Harness], left: Any, right: Any) -> dict[str, Any]:
    h = harness(
        make_plan(flow()), {"erp.read": {"output": {"items": left}}, "erp2.list": {"output": {"records": right}}}
    )
    await h.store.open()
    result = await h.executor.run_flow("rec", {})
    assert result.status == "succeeded", result.run.error
    output: dict[str, Any] = result.output
    return output


def invoice(number: str, total: str, currency: str = "EUR", status: str = "open") -> dict[str, Any]:
    return {"number": number, "total": Decimal(total), "currency": currency, "status": status}


async def test_identical_records_all_match(make_plan: Build, harness: Callable[..., Harness]) -> None:
    records = [invoice("I-1", "10.00"), invoice("I-2", "20.50")]
    out = await reconcile(make_plan, harness, records, [dict(r) for r in records])
    assert out == {"matched": 2, "mismatched": [], "only_left": [], "only_right": []}


async def test_numbers_within_the_tolerance_match_and_beyond_it_mismatch(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    left = [invoice("I-1", "10.00"), invoice("I-2", "20.00"), invoice("I-3", "30.00")]
    right = [invoice("I-1", "10.01"), invoice("I-2", "20.02"), invoice("I-3", "29.99")]
    out = await reconcile(make_plan, harness, left, right)
    assert out["matched"] == 2  # 0.01 apart is within the tolerance, at its edge
    assert out["mismatched"] == [{"key": "I-2", "field": "total", "left": Decimal("20.00"), "right": Decimal("20.02")}]


async def test_fields_without_a_tolerance_compare_exactly_numbers_by_value(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    left = [invoice("I-1", "10", currency="EUR"), {**invoice("I-2", "5"), "status": "paid"}]
    right = [invoice("I-1", "10.000", currency="USD"), {**invoice("I-2", "5"), "status": "open"}]
    out = await reconcile(make_plan, harness, left, right)
    assert out["matched"] == 0
    assert out["mismatched"] == [
        {"key": "I-1", "field": "currency", "left": "EUR", "right": "USD"},
        {"key": "I-2", "field": "status", "left": "paid", "right": "open"},
    ]


async def test_records_on_one_side_only_are_listed_by_key(make_plan: Build, harness: Callable[..., Harness]) -> None:
    left = [invoice("I-1", "1"), invoice("I-2", "2"), invoice("I-9", "9")]
    right = [invoice("I-2", "2"), invoice("I-3", "3"), invoice("I-4", "4")]
    out = await reconcile(make_plan, harness, left, right)
    assert out["matched"] == 1
    assert out["only_left"] == ["I-1", "I-9"]
    assert out["only_right"] == ["I-3", "I-4"]


async def test_a_missing_field_on_one_side_is_a_mismatch(make_plan: Build, harness: Callable[..., Harness]) -> None:
    left = [invoice("I-1", "1")]
    right = [{"number": "I-1", "total": Decimal("1"), "currency": "EUR"}]
    out = await reconcile(make_plan, harness, left, right)
    assert out["mismatched"] == [{"key": "I-1", "field": "status", "left": "open", "right": None}]


async def test_large_inputs(make_plan: Build, harness: Callable[..., Harness]) -> None:
    n = 20_000
    left = [invoice(f"I-{i:05d}", f"{i}.00") for i in range(n)]
    right = [invoice(f"I-{i:05d}", f"{i}.00" if i % 1000 else f"{i}.50") for i in range(500, n + 500)]
    out = await reconcile(make_plan, harness, left, right)
    assert out["only_left"] == [f"I-{i:05d}" for i in range(500)]
    assert out["only_right"] == [f"I-{i:05d}" for i in range(n, n + 500)]
    off = [i for i in range(500, n) if i % 1000 == 0]
    assert [m["key"] for m in out["mismatched"]] == [f"I-{i:05d}" for i in off]
    assert out["matched"] == n - 500 - len(off)
