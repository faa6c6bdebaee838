"""Bench P5: `syncline validate` on a project of 1,000 generated flows, in a cold process.

Anchor: `yamllint` + `check-jsonschema` (against `syncline schema`) on the same files, which only
parse and check shapes; Syncline also resolves references and compiles every expression.
Runs A B A B ... for --rounds rounds and prints medians and the ratio. `--smoke` uses 100 flows and
one round, and skips the anchor when its tools are not installed.

    python bench/p5_validate.py [--flows 1000] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONNECTION = """kind: Connection
name: erp
type: http
config: {base_url: "https://erp.example.com", timeout: 10s}
operations:
  find_customer: {method: GET, path: /customers, query: {tax_id: "{{ params.tax_id }}"}, entity: customer}
  create_sales_order: {method: POST, path: /sales-orders, body: "{{ params.body }}", entity: order, effect: create}
"""
MAPPING = """kind: Mapping
name: order_{i}
fields:
  order_ref: "{{{{ input.id }}}}"
  customer_no: "{{{{ input.customer.id }}}}"
  currency: "{{{{ input.currency | upper }}}}"
  lines: "{{{{ input.lines | map_each({{'item': '{{{{ item.sku }}}}', 'amount': '{{{{ item.qty * item.unit_price }}}}'}}) }}}}"
  total: "{{{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}}}"
"""
FLOW = """kind: Flow
name: flow-{i}
owner: team-{team}
source: {{system: webshop, entity: order}}
trigger:
  webhook:
    path: /hooks/orders/{i}
    idempotency_key: "{{{{ input.id }}}}"
steps:
  - id: customer
    call: erp.find_customer
    with: {{tax_id: "{{{{ input.customer.tax_id }}}}"}}
    retry: {{attempts: 5, initial: 1s, max: 1m, on: [timeout, connect, 429, 5xx]}}
  - id: check
    switch:
      - when: "{{{{ steps.customer.output | length == 0 }}}}"
        steps:
          - fail: {{code: CUSTOMER_UNKNOWN, message: "customer {{{{ input.customer.id }}}} unknown"}}
  - id: order
    map: order_{i}
  - id: post
    call: erp.create_sales_order
    with: {{body: "{{{{ steps.order.output }}}}"}}
    idempotency_key: "order-{{{{ input.id }}}}"
    timeout: 15s
"""


def generate(root: Path, flows: int) -> None:
    for folder in ("systems", "flows", "mappings"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: bench\n")
    (root / "systems" / "erp.yaml").write_text(CONNECTION)
    for i in range(flows):
        (root / "flows" / f"flow_{i:04d}.yaml").write_text(FLOW.format(i=i, team=i % 7))
        (root / "mappings" / f"order_{i:04d}.yaml").write_text(MAPPING.format(i=i))


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.flows, args.rounds = 100, 1
    bindir = Path(sys.executable).parent
    syncline = [str(bindir / "syncline"), "validate", "."]
    yamllint = shutil.which("yamllint", path=str(bindir)) or shutil.which("yamllint")
    checker = shutil.which("check-jsonschema", path=str(bindir)) or shutil.which("check-jsonschema")
    with tempfile.TemporaryDirectory(prefix="syncline-p5-") as tmp:
        root = Path(tmp)
        generate(root, args.flows)
        schema = root / "syncline.schema.json"
        schema.write_text(subprocess.run([str(bindir / "syncline"), "schema"], capture_output=True, text=True).stdout)
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))
        ours: list[float] = []
        anchor: list[float] = []
        for _ in range(args.rounds):
            ours.append(timed(syncline, root))
            if yamllint and checker:
                anchor.append(
                    timed([yamllint, "-d", "relaxed", *files], root)
                    + timed([checker, "--schemafile", str(schema), *files], root)
                )
        print(f"P5 syncline validate, {args.flows} flows + {args.flows} mappings, cold process")
        print(f"  syncline validate        median {statistics.median(ours):.2f} s over {len(ours)} rounds")
        if anchor:
            print(f"  yamllint+check-jsonschema median {statistics.median(anchor):.2f} s")
            print(f"  ratio (anchor / syncline)  {statistics.median(anchor) / statistics.median(ours):.2f}x")
        else:
            print("  anchor skipped: pip install yamllint check-jsonschema to compare")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
