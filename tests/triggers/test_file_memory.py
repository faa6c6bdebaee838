"""A big drop streams: a 60,000-line CSV (about 5 MB) is taken per record with the memory Python
holds bounded by one batch, not by the file (tracemalloc peak, which no busy core skews)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.source_api import NO_CURSOR, Accepted, SourceEvent
from tests.triggers.file_harness import FakeContext, local_connector, scan, source

LINES = 60_000


class CountingContext(FakeContext):
    """Keeps no payloads: checks the records arrive in order, once, and counts them."""

    def __init__(self, connector: Any) -> None:
        super().__init__(connector)
        self.taken = 0

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        for event in events:
            self.taken += 1
            assert event.payload["number"] == self.taken
        self.journal.cursor = cursor
        return [Accepted(event, event.key, True) for event in events]


async def test_a_60k_line_csv_streams_in_bounded_memory(tmp_path: Path) -> None:
    row = "{n},ACME-{n:08d},2026-12-01,{n}.25,EUR,Invoice payment reference {n:010d}\n"
    with (tmp_path / "big.csv").open("w") as out:
        out.write("id,account,date,amount,currency,text\n")
        out.writelines(row.format(n=n) for n in range(1, LINES + 1))
    size = (tmp_path / "big.csv").stat().st_size
    ctx = CountingContext(local_connector(tmp_path))
    tracemalloc.start()
    try:
        await scan(source(per="record", batch=500), ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ctx.taken == LINES and (tmp_path / "done" / "big.csv").exists()
    assert peak < 2.5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while taking a {size / 1e6:.1f} MB file"
    assert peak < size / 2
