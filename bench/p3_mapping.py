"""P3: the mapping engine alone — 100k orders through the P1 order mapping.

Anchor: the same mapping written by hand as a plain Python function. Both run over the same
orders (parsed from JSON with exact decimals), alternately (A B A B ...), and the script prints the
median records/s of each, the ratio (bar: >= 0.4) and µs/order.

    python bench/p3_mapping.py            # 100,000 orders, 5 rounds
    python bench/p3_mapping.py --smoke    # 2,000 orders, 3 rounds (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import map_order

from runtime.expr import ExpressionEngine, dumps, loads

MAPPING_FIELDS: dict[str, Any] = {
    "order_ref": "{{ input.id }}",
    "customer_no": "{{ input.customer.id }}",
    "currency": "{{ input.currency | upper }}",
    "source": "webshop",
    "lines": (
        "{{ input.lines | map_each({'item': '{{ item.sku }}', 'quantity': '{{ item.qty }}',\n"
        "   'price': '{{ item.unit_price }}', 'amount': '{{ item.qty * item.unit_price }}'}) }}\n"
    ),
    "total": "{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}",
}

# The anchor: the P1 mapping written by hand, shared with the P1 baselines.
plain_mapping = map_order


def make_orders(n: int) -> list[dict[str, Any]]:
    orders = []
    for i in range(n):
        doc = {
            "id": f"A-{i}",
            "customer": {"id": f"C-{i % 977}", "tax_id": f"DE{i % 10_000:09d}"},
            "currency": "eur",
            "lines": [
                {
                    "sku": f"SKU-{(i + k) % 500}",
                    "qty": 1 + (i + k) % 7,
                    "unit_price": Decimal((i * 7 + k * 13) % 9000 + 5).scaleb(-2),
                }
                for k in range(5)
            ],
        }
        orders.append(loads(dumps(doc)))  # parsed the way a webhook body is: exact decimals
    return orders


def run(fn: Callable[[dict[str, Any]], Any], orders: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for order in orders:
        fn(order)
    return len(orders) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2,000 orders, 3 rounds")
    parser.add_argument("-n", type=int, default=None, help="number of orders (default 100000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of A B (default 5, smoke 3)")
    args = parser.parse_args(argv)
    n = args.n or (2000 if args.smoke else 100_000)
    rounds = max(args.rounds or (3 if args.smoke else 5), 3)

    orders = make_orders(n)
    assert isinstance(orders[0]["lines"][0]["unit_price"], Decimal)
    compiled = ExpressionEngine().compile(MAPPING_FIELDS, name="webshop_order_to_erp")

    def syncline_mapping(order: dict[str, Any]) -> Any:
        return compiled.render({"input": order})

    for order in orders[:200]:  # same results, or the comparison means nothing
        expected, got = plain_mapping(order), syncline_mapping(order)
        if expected != got or dumps(expected) != dumps(got):
            print(f"MISMATCH\n plain:    {dumps(expected)}\n syncline: {dumps(got)}", file=sys.stderr)
            return 1

    plain_rates, syncline_rates = [], []
    for _ in range(rounds):
        plain_rates.append(run(plain_mapping, orders))
        syncline_rates.append(run(syncline_mapping, orders))
    plain = statistics.median(plain_rates)
    syncline = statistics.median(syncline_rates)
    ratio = syncline / plain
    print(f"P3 mapping engine: {n} orders x {rounds} rounds (A B alternating), 5 lines per order")
    print(f"  plain Python : {plain:12,.0f} records/s  {1e6 / plain:6.2f} µs/order")
    print(f"  Syncline     : {syncline:12,.0f} records/s  {1e6 / syncline:6.2f} µs/order")
    print(f"  ratio        : {ratio:.2f}x  (bar >= 0.40x) {'PASS' if ratio >= 0.4 else 'FAIL'}")
    return 0 if ratio >= 0.4 or args.smoke else 1


if __name__ == "__main__":
    raise SystemExit(main())
