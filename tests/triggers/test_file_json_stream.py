"""`per: record` on a JSON array file streams: bounded memory, exact numbers, one run per element
after a crash mid-file, and a broken element fails the file after the elements before it ran."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runtime.source_api import NO_CURSOR, Accepted, SourceEvent
from runtime.triggers.file_json import JsonArrayReader
from runtime.triggers.file_records import RecordError
from tests.triggers.file_harness import Crash, FakeContext, Journal, local_connector, scan, source


def _ctx(folder: Path, journal: Journal | None = None) -> FakeContext:
    return FakeContext(local_connector(folder), journal)


def _order(n: int) -> str:
    lines = ", ".join(f'{{"sku": "SKU-{n}-{i}", "price": {n % 997}.{i}5, "qty": {i + 1}}}' for i in range(3))
    return f'{{"id": "ord-{n}", "amount": {n}.10, "count": {n}, "note": "caf\\u00e9", "lines": [{lines}]}}'


def _write_array(path: Path, count: int) -> int:
    with path.open("w") as out:
        out.write("[\n")
        out.write(",\n".join(_order(n) for n in range(1, count + 1)))
        out.write("\n]\n")
    return path.stat().st_size


class CountingContext(FakeContext):
    """Keeps no payloads: checks the records arrive in order, once, with exact numbers."""

    def __init__(self, connector: Any) -> None:
        super().__init__(connector)
        self.taken = 0

    async def accept(self, events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        for event in events:
            self.taken += 1
            record = event.payload["record"]
            assert event.payload["number"] == self.taken and record["count"] == self.taken
            assert type(record["amount"]) is Decimal and type(record["count"]) is int
        self.journal.cursor = cursor
        return [Accepted(event, event.key, True) for event in events]


async def test_a_big_json_array_streams_in_bounded_memory(tmp_path: Path) -> None:
    count = 25_000
    size = _write_array(tmp_path / "orders.json", count)  # about 6 MB
    ctx = CountingContext(local_connector(tmp_path))
    tracemalloc.start()
    try:
        await scan(source(per="record", batch=100), ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ctx.taken == count and (tmp_path / "done" / "orders.json").exists()
    assert peak < 2.5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while taking a {size / 1e6:.1f} MB file"
    assert peak < size / 3  # the whole file parsed at once holds about 9 times its size


async def test_records_are_exact_and_keyed_by_number(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"n": 1.50, "big": 12345678901234567890, "e": 1e5}, [1, null], "x"]')
    ctx = _ctx(tmp_path)
    await scan(source(per="record"), ctx)
    sha = ctx.journal.cursor["sha256"]
    assert ctx.journal.order == [f"{sha}:1", f"{sha}:2", f"{sha}:3"]
    records = [ctx.journal.runs[key]["record"] for key in ctx.journal.order]
    assert records == [{"n": Decimal("1.50"), "big": 12345678901234567890, "e": Decimal("1E+5")}, [1, None], "x"]
    assert type(records[0]) is dict and type(records[0]["big"]) is int


async def test_a_crash_mid_array_resumes_and_each_record_runs_once(tmp_path: Path) -> None:
    _write_array(tmp_path / "r.json", 2500)
    journal = Journal()
    first = _ctx(tmp_path, journal)
    first.crash_after = 3
    with pytest.raises(Crash):
        await scan(source(per="record", batch=400), first)
    assert len(journal.runs) == 1200 and journal.cursor["record"] == 1200
    assert (tmp_path / "r.json").exists()  # not moved: it was not finished

    accepted: list[str] = []
    second = _ctx(tmp_path, journal)
    accept = second.accept

    async def counting_accept(events: Sequence[SourceEvent], *, cursor: Any = NO_CURSOR) -> list[Accepted]:
        accepted.extend(str(event.key) for event in events)
        return await accept(events, cursor=cursor)

    second.accept = counting_accept  # type: ignore[method-assign]
    await scan(source(per="record", batch=400), second)
    sha = journal.cursor["sha256"]
    assert accepted == [f"{sha}:{n}" for n in range(1201, 2501)]  # the committed ones are not offered again
    assert journal.order == [f"{sha}:{n}" for n in range(1, 2501)]  # one run per record, in order
    assert [journal.runs[key]["record"]["count"] for key in journal.order] == list(range(1, 2501))
    assert journal.commits == 3 + 4
    assert (tmp_path / "done" / "r.json").exists()


async def test_broken_json_mid_array_fails_the_file_after_the_records_before_it(tmp_path: Path) -> None:
    good = ",\n".join(_order(n) for n in range(1, 8))
    (tmp_path / "s.json").write_text(f'[\n{good},\n{{"id": "ord-8", "amount": 8.10,, "count": 8}},\n{_order(9)}\n]\n')
    ctx = _ctx(tmp_path)
    await scan(source(per="record", batch=3), ctx)
    assert [p["record"]["count"] for p in ctx.journal.runs.values()] == list(range(1, 8))  # 9 is not run
    ((event, reason, message),) = ctx.journal.dead
    assert reason == "unparseable" and event.payload["number"] == 8 and event.payload["line"] == 9
    assert "record 8, line 9: invalid JSON: parse error" in message
    assert (tmp_path / "failed" / "s.json").exists() and not (tmp_path / "s.json").exists()
    reason_text = (tmp_path / "failed" / "s.json.reason.txt").read_text()
    assert "record 8, line 9" in reason_text and "not run" in reason_text


async def test_a_json_file_that_is_no_array_fails(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text('{"id": 1}')
    ctx = _ctx(tmp_path)
    await scan(source(per="record"), ctx)
    assert ctx.journal.runs == {}
    assert "needs a JSON array" in (tmp_path / "failed" / "o.json.reason.txt").read_text()


# ------------------------------------------------------------------------------- the reader alone


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(data: bytes, size: int, encoding: str = "utf-8") -> tuple[list[Any], tuple[str, int, int] | None]:
    reader = JsonArrayReader(encoding)
    values: list[Any] = []
    try:
        async for record in reader.records(_chunks(data, size)):
            values.append(record.value)
    except RecordError as exc:
        return values, (str(exc), exc.number, exc.line)
    return values, None


CASES = {
    "pair and escaped backslash": (
        b'[{"a": "\\ud83d\\ude00"}, {"b": "\\\\ud800"}]',
        ([{"a": "\U0001f600"}, {"b": "\\ud800"}], None),
    ),
    "lone high surrogate": (
        b'[{"a": 1},\n{"b": "\\ud800"}, 3]',
        ([{"a": 1}], ("a \\u escape leaves a lone surrogate (half of a pair)", 2, 2)),
    ),
    "lone low surrogate": (b'[1, "\\udc00x"]', ([1], ("a \\u escape leaves a lone surrogate (half of a pair)", 2, 1))),
    "duplicate key": (b'[{"a": 1},\n {"a": 2, "a": 3}]', ([{"a": 1}], ("invalid JSON: duplicate key 'a'", 2, 2))),
    "NaN": (b"[1, NaN]", ([1], ("invalid JSON: lexical error: invalid char in json text.", 2, 1))),
    "cut short": (b"[1, 2", ([1, 2], ("invalid JSON: parse error: premature EOF", 3, 1))),
    "byte order mark": (b"\xef\xbb\xbf[1, 2.0]", ([1, Decimal("2.0")], None)),
    "empty array": (b" [ ] ", ([], None)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("size", [1, 2, 5, 11, 12, 13, 64 * 1024])
async def test_the_reader_gives_the_same_answer_for_any_chunking(name: str, size: int) -> None:
    data, expected = CASES[name]
    assert await _read(data, size) == expected
    if expected[1] is None:  # what the whole-file parser of the rest of the trigger gives
        assert expected[0] == json_whole(data)


def json_whole(data: bytes) -> Any:
    from runtime.triggers.file_records import json_value

    return json_value(data.decode("utf-8-sig"))


async def test_a_single_byte_encoding_is_read_as_text(tmp_path: Path) -> None:
    assert await _read('[{"café": 1.5}]'.encode("latin-1"), 3, "latin-1") == ([{"café": Decimal("1.5")}], None)
    assert json.loads('"\\u00e9"') == "é"
