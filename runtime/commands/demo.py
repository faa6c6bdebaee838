"""`syncline demo`: the bundled project on SQLite with simulated CRM, billing and ERP systems.

Starts the simulators on loopback (ports 8701-8703 when free), sets their URLs and demo credentials
in the environment, serves the project, sends two signed sample orders through the webhook, and
prints what to try next. `--systems stripe,shopify` (or `all`) also starts those vendor simulators
(`runtime.demo.vendor_sims`) and prints their URLs.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from pathlib import Path

import httpx

from runtime.commands.serve import add_options, listen_or_explain, precheck, serve
from runtime.demo import wms
from runtime.demo.simulators import DEMO_CREDENTIALS, start_simulators
from runtime.demo.vendor_sims import start_vendor_simulators, systems_argument
from runtime.expr import dumps
from runtime.service import loop as serve_loop
from runtime.service.logs import configure
from runtime.service.service import Service

DEMO_TOKEN = "demo-operator-token"
SAMPLE_ORDERS = [
    {
        "id": "DEMO-1001",
        "currency": "eur",
        "customer": {"id": "C-9", "tax_id": "DE123", "name": "Acme GmbH"},
        "lines": [{"sku": "X-1", "qty": 3, "unit_price": 19.99}, {"sku": "Y-2", "qty": 1, "unit_price": 0.10}],
    },
    {
        "id": "DEMO-1002",
        "currency": "usd",
        "customer": {"id": "C-404", "tax_id": "XX000"},
        "lines": [{"sku": "Z-3", "qty": 1, "unit_price": 5}],
    },
]


STATEMENT_HEADER = "booking_date;reference;payer;remittance;amount;currency\n"
STATEMENT_LINES = [
    ("{day}", "BNK-{stamp}-0001", "Acme GmbH", "INV-100 Subscription", "1.250,10", "EUR"),
    ("{day}", "BNK-{stamp}-0002", "Globex", "INV-101 Usage", "0,30", "EUR"),
    ("{day}", "BNK-{stamp}-0003", "House Bank", "Account fee", "-4,90", "EUR"),
]


def drop_statement(project: Path) -> Path:
    """Drop today's sample bank statement into the bundled `bank_drop` folder, the way a legacy
    export does (written under a temporary name, then renamed), unless BANK_DROP_DIR points elsewhere."""
    folder = Path(os.environ.get("BANK_DROP_DIR") or project / ".syncline" / "bank-statements")
    if not folder.is_absolute():
        folder = project / folder
    folder.mkdir(parents=True, exist_ok=True)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    rows = [";".join(v.format(day=day, stamp=day.replace("-", "")) for v in line) + "\n" for line in STATEMENT_LINES]
    target = folder / f"statement-{day}.csv"
    temporary = target.with_name(target.name + ".part")
    temporary.write_text(STATEMENT_HEADER + "".join(rows), encoding="utf-8")
    temporary.rename(target)
    return target


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="serve the bundled project with simulated CRM, billing and ERP systems")
    add_options(p)
    p.add_argument("--no-traffic", action="store_true", help="do not send the sample orders")
    p.add_argument(
        "--systems",
        type=systems_argument,
        default=[],
        metavar="A,B",
        help="also start these vendor simulators (stripe,shopify,… or all) and print their URLs",
    )
    p.set_defaults(handler=run)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def signed_headers(body: bytes, secret: str) -> dict[str, str]:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Timestamp": stamp, "X-Signature": signature}


def _send_samples(port: int, broker: bool) -> None:
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    ids = []
    for order in SAMPLE_ORDERS:
        body = dumps(order).encode()
        answer = httpx.post(
            f"{base}/hooks/webshop/orders",
            content=body,
            headers=signed_headers(body, DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"]),
            timeout=10,
        )
        ids.append(answer.json().get("run_id", f"HTTP {answer.status_code}"))
    time.sleep(1.0)
    if broker:
        print(wms.publish_samples(str(SAMPLE_ORDERS[0]["id"])), flush=True)
    print(_next_steps(port, ids), flush=True)


def _next_steps(port: int, ids: list[str]) -> str:
    secret = DEMO_CREDENTIALS["WEBSHOP_HOOK_SECRET"]
    return f"""
Syncline demo is running on http://127.0.0.1:{port}  (Ctrl-C to stop)
Console: http://127.0.0.1:{port}/console/  (sign in with the token {DEMO_TOKEN})
Two sample orders were sent: runs {", ".join(ids)} (the second names a customer the ERP does not know).

Post a signed order yourself:
  body='{{"id":"A-100","currency":"eur","customer":{{"id":"C-9","tax_id":"DE123"}},"lines":[{{"sku":"X-1","qty":2,"unit_price":0.10}}]}}'
  ts=$(date +%s); sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac {secret} | sed 's/^.* //')
  curl -s -X POST http://127.0.0.1:{port}/hooks/webshop/orders -H 'Content-Type: application/json' \\
       -H "X-Timestamp: $ts" -H "X-Signature: $sig" -d "$body"

Read a run with its steps (use the run_id the webhook answered):
  curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' http://127.0.0.1:{port}/api/v1/runs/{ids[0] if ids else "RUN_ID"}

A bank statement CSV was dropped into .syncline/bank-statements/: its two credit lines become
incoming payments in the ERP (flow bank-statement-to-erp), the fee line is filtered, the file moves
to done/. Drop another statement-*.csv there to see it taken; the same content again is skipped.
  curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' 'http://127.0.0.1:{port}/api/v1/runs?flow=bank-statement-to-erp'

With RabbitMQ running, shipment events from the warehouse come over the queue wms.shipments (flow
wms-shipment-to-erp): the dispatch of DEMO-1001 is recorded in the ERP once, although it was
published twice with one message id; the "packed" event is filtered.
  curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' 'http://127.0.0.1:{port}/api/v1/runs?flow=wms-shipment-to-erp'

More: /api/v1/runs?flow=webshop-order-to-erp   /api/v1/dead-letters   /metrics   /api/v1/openapi.json
"""


def run(args: argparse.Namespace) -> int:
    project = Path(args.project)
    checked = precheck(project)
    if checked is None:
        return 1
    # the port first: a busy one is a one-line answer, not a traceback after the simulators started
    hint = "Pick another port: make demo PORT=8091 (or syncline demo --port 8091)."
    sock = listen_or_explain("demo", args.host, args.port, hint)
    if sock is None:
        return 1
    ports = {name: port for name, port in (("crm", 8701), ("erp", 8702), ("billing", 8703)) if _free(port)}
    sims = start_simulators(ports)
    os.environ.update(sims.env())
    vendors = start_vendor_simulators(args.systems)
    os.environ.update(vendors.env())
    sims.connect_webhooks(f"http://127.0.0.1:{args.port}")
    os.environ.setdefault("SYNCLINE_OPERATOR_TOKENS", DEMO_TOKEN)
    service = Service(project, args.store, workers=args.workers, checked=checked, poison_after=args.poison_after)
    configure("warning" if args.log_level == "info" else args.log_level, redact=service.redact_text)
    print("simulated systems: " + ", ".join(f"{n} {s.url}" for n, s in sims.servers.items()), flush=True)
    if vendors.running:
        print(vendors.describe(), flush=True)
    why = wms.unreachable() or wms.declare_queue()
    if why is not None:  # the demo cannot assume a broker: that one flow waits, the rest runs
        service.skip_sources.add(wms.FLOW)
        print(f"flow {wms.FLOW} is not started: {why}. Start RabbitMQ (guest/guest) to see it.", flush=True)
    if not args.no_traffic:
        drop_statement(project)
        threading.Thread(target=_send_samples, args=(args.port, why is None), daemon=True).start()
    else:
        print(_next_steps(args.port, []), flush=True)
    try:
        serve_loop.run(serve(service, args, sock))
    except KeyboardInterrupt:
        pass
    finally:
        sims.stop()
        vendors.stop()
    return 0
