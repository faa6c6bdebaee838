"""A 100,000-line CSV dropped into a `syncline serve` process that is killed (SIGKILL) mid-file:
after the restart every record has exactly one run (its key `<sha256>:<record>`), none is lost, the
file is read on from the cursor and ends in done/."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from runtime.store.base import RunFilter
from runtime.store.factory import open_store
from tests.service.harness import VIEWER, bearer, serve_process, wait_ready

RECORDS = 100_000

PROJECT = """\
kind: Project
name: drop-test
service: {max_backlog: 1000000}
"""

CONNECTION = """\
kind: Connection
name: drop
type: file
system: bank
config: {base_dir: data/drop}
"""

FLOW = """\
kind: Flow
name: lines
trigger:
  file: {connection: drop, pattern: "*.csv", per: record, stable_for: 0s, every: 100ms, batch: 500}
steps:
  - set: {amount: "{{ input.record.amount }}"}
"""


def _project(root: Path) -> Path:
    for folder in ("systems", "flows", "data/drop"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "syncline.yaml").write_text(PROJECT)
    (root / "systems" / "drop.yaml").write_text(CONNECTION)
    (root / "flows" / "lines.yaml").write_text(FLOW)
    return root


def _drop(folder: Path) -> None:
    temp = folder / "statement.csv.part"  # written under a temporary name, then renamed
    with temp.open("w") as out:
        out.write("id,amount\n")
        out.writelines(f"{n},{n}.50\n" for n in range(1, RECORDS + 1))
    temp.rename(folder / "statement.csv")


async def _cursor(url: str, root: Path) -> Any:
    store = open_store(url, root)
    await store.open()
    try:
        return await store.get_cursor("file:lines")
    finally:
        await store.close()


async def _until(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s")


async def test_kill_9_mid_file_then_every_record_has_exactly_one_run(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = serve_process(project, url, env={}, args=("--concurrency", "1"))
    try:
        await wait_ready(first)
        _drop(project / "data" / "drop")

        async def midway() -> bool:
            cursor = await _cursor(url, tmp_path)
            return isinstance(cursor, dict) and cursor.get("record", 0) >= 10_000

        await _until(midway, 60)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    at_kill = (await _cursor(url, tmp_path))["record"]
    assert at_kill < RECORDS, "the file was finished before the kill; the test proves nothing"
    assert (project / "data" / "drop" / "statement.csv").exists()

    second = serve_process(project, url, env={"SYNCLINE_VIEWER_TOKENS": VIEWER}, args=("--concurrency", "1"))
    try:
        await wait_ready(second)
        done = project / "data" / "drop" / "done" / "statement.csv"

        async def finished() -> bool:
            return done.exists()

        await _until(finished, 60)
        async with httpx.AsyncClient(base_url=second.url) as client:
            metrics = (await client.get("/metrics", headers=bearer(VIEWER))).text
    finally:
        second.proc.send_signal(signal.SIGTERM)
        second.proc.wait(30)

    store = open_store(url, tmp_path)
    await store.open()
    try:
        runs = await store.list_runs(RunFilter(flow="lines", limit=RECORDS * 2))
    finally:
        await store.close()
    numbers = sorted(run.input["number"] for run in runs)
    assert numbers == list(range(1, RECORDS + 1))  # every record once: none lost, none twice
    keys = {run.meta["source"]["key"] for run in runs}
    assert len(keys) == RECORDS
    broken = [run.id for run in runs if run.status in ("failed", "dead_lettered", "exception")]
    assert not broken, f"runs that did not go through after the kill: {broken[:5]}"
    # the second process read on from the cursor: it took only the records after the kill's cursor
    taken = re.search(r'syncline_source_events_total\{flow="lines",kind="file",name="records"\} ([0-9.e+]+)', metrics)
    assert taken is not None, metrics
    assert float(taken.group(1)) == RECORDS - at_kill
