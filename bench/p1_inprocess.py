"""Bench P1 (in-process part): the P1 path — validate → map (order → ERP sales order, exact decimal
totals) → HTTP call to a loopback sink → respond — run by the executor without the HTTP front,
journal on (memory store and SQLite store). Prints runs/s, sequential and 32 concurrent.

The full P1 (webhook in front, against aiohttp and Node-RED baselines) arrives with `syncline serve`.

    python bench/p1_inprocess.py [--runs 3000] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.compiler import check_project
from runtime.engine.executor import Executor
from runtime.engine.plan import build_plan
from runtime.store.factory import open_store

ORDER = {
    "id": "A-1",
    "currency": "eur",
    "customer": {"id": "C-9", "tax_id": "DE123"},
    "lines": [{"sku": f"S-{i}", "qty": i + 1, "unit_price": Decimal("19.99")} for i in range(5)],
}
PROJECT = {
    "syncline.yaml": "kind: Project\nname: p1\n",
    "systems/erp.yaml": """kind: Connection
name: erp
type: http
config: {{base_url: "http://127.0.0.1:{port}", timeout: 10s}}
operations:
  create_sales_order: {{method: POST, path: /sales-orders, body: "{{{{ params.body }}}}", entity: order, effect: create}}
""",
    "schemas/order.json": """{"type": "object", "required": ["id", "customer", "lines"],
 "properties": {"id": {"type": "string"}, "lines": {"type": "array", "items": {"type": "object",
 "required": ["sku", "qty", "unit_price"]}}}}""",
    "mappings/order.yaml": """kind: Mapping
name: order_to_erp
fields:
  order_ref: "{{ input.id }}"
  customer_no: "{{ input.customer.id }}"
  currency: "{{ input.currency | upper }}"
  source: webshop
  lines: "{{ input.lines | map_each({'item': '{{ item.sku }}', 'quantity': '{{ item.qty }}', 'price': '{{ item.unit_price }}', 'amount': '{{ item.qty * item.unit_price }}'}) }}"
  total: "{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}"
""",
    "flows/p1.yaml": """kind: Flow
name: p1
trigger: {manual: {}}
steps:
  - validate: schemas/order.json
  - id: order
    map: order_to_erp
  - id: post
    call: erp.create_sales_order
    with: {body: "{{ steps.order.output }}"}
    idempotency_key: "order-{{ input.id }}"
  - respond: {status: 201, body: {erp_id: "{{ steps.post.output.id }}"}}
""",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(root: Path, store_url: str, runs: int, concurrency: int) -> float:
    plan = build_plan(check_project(root))
    store = open_store(store_url, root)
    await store.open()
    executor = Executor(plan, store)
    orders: list[dict[str, Any]] = [{**ORDER, "id": f"A-{i}"} for i in range(runs)]
    queue = iter(orders)

    async def worker() -> None:
        for order in queue:
            result = await executor.run_flow("p1", order)
            if result.status != "succeeded":
                raise SystemExit(f"run failed: {result.error}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await executor.aclose()
    await store.close()
    return runs / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.rounds = 100, 1
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_sink.py")), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        with tempfile.TemporaryDirectory(prefix="syncline-p1-") as tmp:
            root = Path(tmp)
            for relative, text in PROJECT.items():
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_text(text.format(port=port) if relative.startswith("systems") else text)
            print(f"P1 in-process (validate → map → HTTP call → respond), {args.runs} runs per measurement")
            for label, url in (("memory store", "memory://"), ("SQLite store", f"sqlite:///{root}/p1.db")):
                for concurrency in (1, 32):
                    figures = []
                    for round_ in range(args.rounds):
                        db = url if url.startswith("memory") else f"sqlite:///{root}/p1-{concurrency}-{round_}.db"
                        figures.append(asyncio.run(measure(root, db, args.runs, concurrency)))
                    print(
                        f"  {label:<13} concurrency {concurrency:>2}: median {statistics.median(figures):8.0f} runs/s"
                        f"  (rounds: {', '.join(f'{f:.0f}' for f in figures)})"
                    )
    finally:
        sink.terminate()
        sink.wait(timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
