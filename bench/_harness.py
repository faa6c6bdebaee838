"""Shared helpers of the service benchmarks (P1, P2, P7): processes, ports, readiness, the loopback
sink, installs into the venv, the P1 order and its mapping, and figure formatting."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
PYTHON = sys.executable
BINDIR = Path(PYTHON).parent

# ------------------------------------------------------------------------------------------ the order
# Five lines; 0.125 and 3.33 make the total 528.015, which only exact decimals round (half up) to
# 528.02 — binary floats give 528.01.
LINES: list[tuple[str, int, str]] = [
    ("S-1", 1, "19.99"),
    ("S-2", 2, "5.5"),
    ("S-3", 3, "0.125"),
    ("S-4", 4, "120"),
    ("S-5", 5, "3.33"),
]
EXPECTED_TOTAL = Decimal("528.02")
ORDER_HEAD = '{"id":"A-'
ORDER_TAIL = (
    '","currency":"eur","customer":{"id":"C-9","tax_id":"DE123"},"lines":['
    + ",".join(f'{{"sku":"{sku}","qty":{qty},"unit_price":{price}}}' for sku, qty, price in LINES)
    + "]}"
)
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "customer", "lines"],
    "properties": {
        "id": {"type": "string"},
        "currency": {"type": "string"},
        "customer": {"type": "object", "required": ["id"]},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "unit_price"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}, "unit_price": {"type": "number"}},
            },
        },
    },
}
CENT = Decimal("0.01")


def order_body(ident: str | int) -> bytes:
    return (ORDER_HEAD + str(ident) + ORDER_TAIL).encode()


def map_order(order: dict[str, Any]) -> dict[str, Any]:
    """The P1 mapping, by hand (what every baseline does; Syncline's mapping must give the same)."""
    lines = order["lines"]
    return {
        "order_ref": order["id"],
        "customer_no": order["customer"]["id"],
        "currency": order["currency"].upper(),
        "source": "webshop",
        "lines": [
            {
                "item": ln["sku"],
                "quantity": ln["qty"],
                "price": ln["unit_price"],
                "amount": ln["qty"] * ln["unit_price"],
            }
            for ln in lines
        ],
        "total": sum(ln["qty"] * ln["unit_price"] for ln in lines).quantize(CENT, rounding=ROUND_HALF_UP),
    }


def check_mapped(sent: bytes, order_id: str) -> str | None:
    """None when the body the sink last received is the P1 mapping of order `order_id`."""
    try:
        got = json.loads(sent, parse_float=Decimal)
    except ValueError as exc:
        return f"the sink got invalid JSON: {exc}: {sent[:200]!r}"
    expected = map_order(json.loads(order_body(order_id), parse_float=Decimal))
    if got != expected:
        return f"mapping differs:\n  got      {got}\n  expected {expected}"
    if got["total"] != EXPECTED_TOTAL:
        return f"total {got['total']} != {EXPECTED_TOTAL}"
    return None


# ------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def ensure_modules(packages: dict[str, str], *, install: bool) -> list[str]:
    """Make `module -> pip requirement` importable, installing with the venv's pip when `install`.
    Returns the modules still missing."""
    missing = [module for module in packages if not have(module)]
    if missing and install:
        print(f"  installing {', '.join(packages[m] for m in missing)} into the venv", flush=True)
        subprocess.run(
            [PYTHON, "-m", "pip", "install", "-q", *(packages[m] for m in missing)],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        importlib.invalidate_caches()
        missing = [module for module in missing if not have(module)]
    return missing


PYLIB = CACHE / "pylib"
PYLIB_PACKAGES = {"uvloop": ["uvloop", "httptools"], "fastjsonschema": ["fastjsonschema"]}


def ensure_pylib(patches: str | None) -> None:
    """Packages the experimental patches need (uvloop, httptools, fastjsonschema), installed into
    bench/.cache/pylib (put on PYTHONPATH only for patched servers), never into the venv."""
    wanted = [pkg for patch, pkgs in PYLIB_PACKAGES.items() if patches and patch in patches for pkg in pkgs]
    missing = [pkg for pkg in wanted if not (PYLIB / pkg).exists()]
    if missing:
        print(f"  installing {', '.join(missing)} into {PYLIB} (for the patched variant only)", flush=True)
        subprocess.run(
            [PYTHON, "-m", "pip", "install", "-q", "--target", str(PYLIB), *missing],
            check=False,
            stdout=subprocess.DEVNULL,
        )


class Proc:
    """A server subprocess with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self._log: IO[bytes] = self.log_path.open("wb")
        merged = {**os.environ, **(env or {})}
        self.started = time.perf_counter()
        self.ready_after = float("nan")  # seconds from spawn to ready, when a caller measured it
        self.popen = subprocess.Popen(
            list(cmd), cwd=cwd, env=merged, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 2000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until(proc: Proc, probe: Any, timeout: float = 60.0) -> float:
    """Poll `probe()` (True when ready) every 10 ms; seconds since the process started."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if probe():
                return time.perf_counter() - proc.started
        time.sleep(0.01)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s:\n{proc.tail()}")


@contextlib.contextmanager
def sink() -> Iterator[int]:
    """The loopback sink (bench/_sink.py) on a free port."""
    port = free_port()
    proc = Proc("sink", [PYTHON, str(BENCH / "_sink.py"), str(port)])
    try:
        wait_until(proc, lambda: request(port, "GET", "/last")[0] == 200, 20)
        yield port
    finally:
        proc.stop()


def sink_last(port: int) -> bytes:
    return request(port, "GET", "/last")[1]


# -------------------------------------------------------------------------------------- figures


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def rounds_text(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    return ", ".join(fmt.format(v) for v in values)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and b == b and a == a else "n/a"


# ------------------------------------------------------------------------------ Syncline projects

SCHEMA_JSON = json.dumps(ORDER_SCHEMA, indent=1)
CONNECTION = """kind: Connection
name: erp
type: http
config: {{base_url: "http://127.0.0.1:{port}", timeout: 10s}}
operations:
  create_sales_order: {{method: POST, path: /sales-orders, body: "{{{{ params.body }}}}", entity: order, effect: create}}
"""
MAPPING = """kind: Mapping
name: {name}
fields:
  order_ref: "{{{{ input.id }}}}"
  customer_no: "{{{{ input.customer.id }}}}"
  currency: "{{{{ input.currency | upper }}}}"
  source: webshop
  lines: "{{{{ input.lines | map_each({{'item': '{{{{ item.sku }}}}', 'quantity': '{{{{ item.qty }}}}', 'price': '{{{{ item.unit_price }}}}', 'amount': '{{{{ item.qty * item.unit_price }}}}'}}) }}}}"
  total: "{{{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}}}"
"""
# P1: sync webhook → validate → map → call → respond with the ERP id.
SYNC_FLOW = """kind: Flow
name: {name}
trigger:
  webhook: {{path: {path}, mode: sync}}
steps:
  - validate: schemas/order.json
  - id: order
    map: {mapping}
  - id: post
    call: erp.create_sales_order
    with: {{body: "{{{{ steps.order.output }}}}"}}
    idempotency_key: "order-{{{{ input.id }}}}"
  - respond: {{status: 201, body: {{erp_id: "{{{{ steps.post.output.id }}}}"}}}}
"""
# P2: async webhook with HMAC (timestamped) and an idempotency key; workers run the same steps.
ASYNC_FLOW = """kind: Flow
name: {name}
trigger:
  webhook:
    path: {path}
    mode: async
    idempotency_key: "{{{{ input.id }}}}"
    auth: {{type: hmac_sha256, secret: "{{{{ secret('P2_HOOK_SECRET') }}}}", header: X-Signature, timestamp_header: X-Timestamp, tolerance: 1h}}
steps:
  - validate: schemas/order.json
  - id: order
    map: {mapping}
  - id: post
    call: erp.create_sales_order
    with: {{body: "{{{{ steps.order.output }}}}"}}
    idempotency_key: "order-{{{{ input.id }}}}"
"""
HOOK_SECRET = "p2-bench-secret-4f1c9a"


def write_project(root: Path, sink_port: int, *, flows: int = 1, mode: str = "sync") -> None:
    """A Syncline project: flow `p1` at /hooks/p1 (sync) or `p2` at /hooks/p2 (async, HMAC), plus
    `flows - 1` more flows of the same shape at /hooks/n/<i> (P7)."""
    for folder in ("systems", "flows", "mappings", "schemas"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text("kind: Project\nname: bench\n")
    (root / "systems" / "erp.yaml").write_text(CONNECTION.format(port=sink_port))
    (root / "schemas" / "order.json").write_text(SCHEMA_JSON)
    (root / "mappings" / "order_to_erp.yaml").write_text(MAPPING.format(name="order_to_erp"))
    template, name, path = (SYNC_FLOW, "p1", "/hooks/p1") if mode == "sync" else (ASYNC_FLOW, "p2", "/hooks/p2")
    (root / "flows" / f"{name}.yaml").write_text(template.format(name=name, path=path, mapping="order_to_erp"))
    for i in range(1, flows):
        mapping = f"order_to_erp_{i:04d}"
        (root / "mappings" / f"{mapping}.yaml").write_text(MAPPING.format(name=mapping))
        flow = (SYNC_FLOW if i % 2 else ASYNC_FLOW).format(name=f"flow-{i:04d}", path=f"/hooks/n/{i}", mapping=mapping)
        (root / "flows" / f"flow_{i:04d}.yaml").write_text(flow)


def start_syncline(
    root: Path,
    port: int,
    *,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    patches: str | None = None,
) -> Proc:
    """`syncline serve` on the project (SQLite store in the project: journal on), ready on /readyz.
    `patches`: run it through bench/_patched_serve.py with these proposed optimisations applied."""
    cmd = [str(BINDIR / "syncline")]
    env = {"P2_HOOK_SECRET": HOOK_SECRET, **(env or {})}
    if patches:
        cmd = [PYTHON, str(BENCH / "_patched_serve.py"), patches]
        if any(patch in patches for patch in PYLIB_PACKAGES):
            ensure_pylib(patches)
            env["PYTHONPATH"] = str(PYLIB)
    proc = Proc(
        "syncline" + (f"+{patches}" if patches else ""),
        [*cmd, "serve", "--project", str(root), "--port", str(port), *extra],
        env=env,
    )
    try:
        proc.ready_after = wait_until(proc, lambda: request(port, "GET", "/readyz")[0] == 200, 60)
    except BaseException:
        proc.stop()
        raise
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> tuple[float, float]:
    """(main thread, other threads) CPU seconds of process `pid`."""
    main = other = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                used = (int(fields[11]) + int(fields[12])) / tick
                if task.name == str(pid):
                    main += used
                else:
                    other += used
    return main, other
