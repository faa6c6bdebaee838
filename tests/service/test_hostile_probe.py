"""Issue 8's acceptance probe against a real `syncline serve`: poison numbers, a canary secret in derived
forms, a lone surrogate, a CR/LF response header from data and a trickling body, all at once while
`/healthz` is probed every 20 ms (tests/probes/hostile.py).

The node must answer every probe, within the render budget (1 s: no render holds the loop longer; the
issue's 100 ms is the figure `python -m tests.probes.hostile` reports, measured on a quiet machine),
end each run as it should, and show the canary nowhere: API, metrics, logs, the store's files.
"""

from __future__ import annotations

from pathlib import Path

from tests.probes.hostile import probe, problems

RENDER_BUDGET = 1.0


async def test_the_node_holds_against_the_hostile_probe(tmp_path: Path) -> None:
    report = await probe(tmp_path)
    assert report.health, "no health probe was made"
    assert problems(report, latency_bar=RENDER_BUDGET) == [], report.summary()
