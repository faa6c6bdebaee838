"""Query parameters go out in declaration order, byte for byte the same in every process.

Signed and order-sensitive APIs compare the query string as sent, so the order must not depend on
`PYTHONHASHSEED` (string hashing is randomised per process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from connectors.http.request import query_params
from tests.connectors.http.http_target import TargetServer

ROOT = Path(__file__).resolve().parents[3]

# One call in a fresh process: config query, then the `?query` written in the path, then the
# operation's query (`alpha` declared in the path and replaced by the operation keeps its place).
SCRIPT = """
import asyncio, sys
from tests.connectors.http.http_target import call_once, make_connector

operations = {
    "find": {
        "path": "/find?zeta=1&alpha=2",
        "query": {"mike": "3", "bravo": ["4", "5"], "yankee": "6", "alpha": "7", "none": None},
    }
}
connector = make_connector(sys.argv[1], operations=operations, query={"company": "100", "x-ray": "8", "delta": "9"})
asyncio.run(call_once(connector, "find"))
"""

EXPECTED = "GET /find?company=100&x-ray=8&delta=9&zeta=1&alpha=7&mike=3&bravo=4&bravo=5&yankee=6 HTTP/1.1"


def _request_line(server: TargetServer, seed: str) -> str:
    before = len(server.requests)
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run([sys.executable, "-c", SCRIPT, server.url], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(server.requests) == before + 1
    return server.requests[-1].request_line


def test_query_order_is_the_declaration_order_in_every_process(serve):
    server = serve()
    lines = {seed: _request_line(server, seed) for seed in ("1", "2")}
    assert lines == {seed: EXPECTED for seed in lines}


def test_query_params_merge_keeps_first_declaration_position():
    merged = query_params({"b": "1", "a": ["2", "3"]}, [("c", "4"), ("a", "5")], {"b": None, "d": "6"})
    assert merged == [("b", "1"), ("a", "5"), ("c", "4"), ("d", "6")]
