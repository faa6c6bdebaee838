"""The file trigger's source on a local folder: formats, complete-file detection, duplicates,
failed files with a reason, per-record batches and resuming after a crash mid-file."""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from runtime.clock import FakeClock
from runtime.connector_api import ConnectorError
from runtime.testing.source_kit import check_source
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.file import FileSpec
from tests.triggers.file_harness import Crash, DropOrigin, FakeContext, Journal, local_connector, scan, source


def _ctx(folder: Path, journal: Journal | None = None, clock: FakeClock | None = None) -> FakeContext:
    return FakeContext(local_connector(folder), journal, clock=clock)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- formats


async def test_per_file_csv_with_options(tmp_path: Path) -> None:
    drop = tmp_path / "drop.csv"
    drop.write_text('id;name\n1;"Müller; Anna"\n2;"two\nlines"\n')
    sha, size = _sha(drop), drop.stat().st_size
    ctx = _ctx(tmp_path)
    await scan(source(csv={"delimiter": ";"}), ctx)
    payload = ctx.journal.runs[sha]
    assert payload["content"] == [{"id": "1", "name": "Müller; Anna"}, {"id": "2", "name": "two\nlines"}]
    assert payload["file"]["name"] == "drop.csv" and payload["file"]["sha256"] == sha
    assert payload["file"]["size"] == size
    assert (tmp_path / "done" / "drop.csv").exists() and not drop.exists()


async def test_csv_without_header_gives_lists(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,x\n2,y\n")
    ctx = _ctx(tmp_path)
    await scan(source(per="record", csv={"header": False}), ctx)
    assert [p["record"] for p in ctx.journal.runs.values()] == [["1", "x"], ["2", "y"]]


async def test_json_ndjson_and_text(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"total": 12.50, "n": 3}')
    (tmp_path / "b.ndjson").write_text('{"id": 1}\n\n{"id": 2.5}\n')
    (tmp_path / "c.txt").write_text("hello\nworld\n")
    ctx = _ctx(tmp_path)
    await scan(source(), ctx)
    contents = {p["file"]["name"]: p["content"] for p in ctx.journal.runs.values()}
    assert contents["a.json"] == {"total": Decimal("12.50"), "n": 3}
    assert contents["b.ndjson"] == [{"id": 1}, {"id": Decimal("2.5")}]
    assert contents["c.txt"] == "hello\nworld\n"


async def test_json_array_per_record_and_text_lines(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"id": "a"}, {"id": "b"}]')
    (tmp_path / "b.txt").write_text("one\r\ntwo\r\n")
    ctx = _ctx(tmp_path)
    await scan(source(per="record"), ctx)
    records = sorted((p["file"]["name"], p["number"], p["record"]) for p in ctx.journal.runs.values())
    assert records == [("a.json", 1, {"id": "a"}), ("a.json", 2, {"id": "b"}), ("b.txt", 1, "one"), ("b.txt", 2, "two")]


async def test_fixed_width_by_columns_and_by_widths(tmp_path: Path) -> None:
    (tmp_path / "f.dat").write_text("00012ACME      000123.45\n00013Beta Ltd  000001.00\n")
    ctx = _ctx(tmp_path)
    columns = [{"name": "id", "start": 1, "width": 5}, {"name": "amount", "start": 16, "width": 9}]
    await scan(source(per="record", format="fixed_width", columns=columns), ctx)
    assert [p["record"] for p in ctx.journal.runs.values()] == [
        {"id": "00012", "amount": "000123.45"},
        {"id": "00013", "amount": "000001.00"},
    ]
    (tmp_path / "g.dat").write_text("00014Gamma     000002.00\n")
    await scan(source(per="record", format="fixed_width", widths=[5, 10, 9], names=["id", "name", "amount"]), ctx)
    assert list(ctx.journal.runs.values())[-1]["record"] == {"id": "00014", "name": "Gamma", "amount": "000002.00"}


def test_spec_refuses_inconsistent_layouts() -> None:
    for bad in (
        {"format": "fixed_width"},
        {"format": "fixed_width", "widths": [1, 2], "names": ["a"]},
        {"format": "csv", "widths": [1]},
        {"done": "../out"},
        {"done": "x", "failed": "x"},
        {"max_bytes": "lots"},
        {"pattern": "../*.csv"},
        {"pattern": "/etc/*"},
    ):
        with pytest.raises(ValidationError):
            FileSpec.model_validate({"connection": "drop", **bad})


# ----------------------------------------------------------------------------- completeness


async def test_temporary_names_wait_until_renamed(tmp_path: Path) -> None:
    (tmp_path / "big.csv.part").write_text("id\n1\n")
    (tmp_path / ".hidden.csv").write_text("id\n1\n")
    (tmp_path / "other.tmp").write_text("x")
    ctx = _ctx(tmp_path)
    src = source(pattern="*")
    await scan(src, ctx)
    assert ctx.journal.runs == {}
    (tmp_path / "big.csv.part").rename(tmp_path / "big.csv")
    await scan(src, ctx)
    assert [p["file"]["name"] for p in ctx.journal.runs.values()] == ["big.csv"]
    assert (tmp_path / "other.tmp").exists() and (tmp_path / ".hidden.csv").exists()


async def test_stable_for_waits_for_size_and_mtime_to_settle(tmp_path: Path) -> None:
    clock = FakeClock()
    ctx = _ctx(tmp_path, clock=clock)
    src = source(stable_for="10s", every="30s")
    growing = tmp_path / "g.csv"
    growing.write_text("id\n1\n")
    assert await scan(src, ctx) == 10.0  # first sight: wait until it could be complete
    clock.advance(6)
    with growing.open("a") as out:
        out.write("2\n")
    assert await scan(src, ctx) == 10.0  # it changed: the wait starts again
    clock.advance(9.5)
    await scan(src, ctx)
    assert ctx.journal.runs == {}
    clock.advance(0.5)
    await scan(src, ctx)
    (payload,) = ctx.journal.runs.values()
    assert payload["content"] == [{"id": "1"}, {"id": "2"}]


# ------------------------------------------------------------------------------ duplicates


async def test_same_content_twice_is_skipped(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    src = source()
    (tmp_path / "a.csv").write_text("id\n1\n")
    await scan(src, ctx)
    (tmp_path / "again.csv").write_text("id\n1\n")
    await scan(src, ctx)
    assert len(ctx.journal.runs) == 1 and ctx.counts["duplicates"] == 1
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.csv", "again.csv"]


async def test_duplicates_processed_when_configured(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    src = source(on_duplicate="process", per="record")
    (tmp_path / "a.csv").write_text("id\n1\n")
    await scan(src, ctx)
    (tmp_path / "a.csv").write_text("id\n1\n")
    os.utime(tmp_path / "a.csv", (1_700_000_000, 1_700_000_000))
    await scan(src, ctx)
    assert len(ctx.journal.runs) == 2
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.1.csv", "a.csv"]


# ------------------------------------------------------------------------------ failed files


async def test_unparseable_record_fails_the_file_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "s.ndjson").write_text('{"n": 1}\n{"n": 2}\n{"n": \n{"n": 4}\n')
    ctx = _ctx(tmp_path)
    await scan(source(per="record", batch=1), ctx)
    assert [p["record"] for p in ctx.journal.runs.values()] == [{"n": 1}, {"n": 2}]  # 4 is not run
    ((event, reason, message),) = ctx.journal.dead
    assert reason == "unparseable" and event.payload["number"] == 3 and event.payload["line"] == 3
    assert "record 3, line 3" in message
    assert (tmp_path / "failed" / "s.ndjson").exists()
    reason_text = (tmp_path / "failed" / "s.ndjson.reason.txt").read_text()
    assert "record 3, line 3" in reason_text and "not run" in reason_text


async def test_csv_row_longer_than_header_and_unclosed_quote(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,x\n2,y,extra\n")
    (tmp_path / "b.csv").write_text('id,name\n1,"open\n2,y\n')
    ctx = _ctx(tmp_path)
    await scan(source(per="record"), ctx)
    reasons = {p.name: p.read_text() for p in (tmp_path / "failed").glob("*.reason.txt")}
    assert "record 2, line 3: 3 fields; the header has 2" in reasons["a.csv.reason.txt"]
    assert "never closed" in reasons["b.csv.reason.txt"]
    assert [p["record"] for p in ctx.journal.runs.values()] == [{"id": "1", "name": "x"}]


async def test_per_file_parse_error_dead_letters_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": 1,\n "a": 2}')
    ctx = _ctx(tmp_path)
    await scan(source(), ctx)
    assert ctx.journal.runs == {}
    ((_event, reason, message),) = ctx.journal.dead
    assert reason == "unparseable" and "duplicate key" in message
    assert (tmp_path / "failed" / "bad.json.reason.txt").exists()


async def test_file_over_max_bytes_fails(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text("[" + ",".join(["1"] * 1000) + "]")
    ctx = _ctx(tmp_path)
    await scan(source(max_bytes="1KB"), ctx)
    assert "larger than max_bytes" in (tmp_path / "failed" / "big.json.reason.txt").read_text()


# -------------------------------------------------------------------------- batches and resume


async def test_records_commit_in_batches_with_backpressure(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("id\n" + "".join(f"{n}\n" for n in range(1, 1001)))
    ctx = _ctx(tmp_path)
    await scan(source(per="record", batch=300), ctx)
    assert ctx.journal.commits == 4 and len(ctx.journal.runs) == 1000
    assert ctx.ready_calls >= 4
    sha = ctx.journal.cursor["sha256"]
    assert ctx.journal.order[0] == f"{sha}:1" and ctx.journal.order[-1] == f"{sha}:1000"
    assert ctx.journal.cursor["record"] == 1000


async def test_crash_mid_file_resumes_after_the_last_committed_record(tmp_path: Path) -> None:
    lines = "".join(f'{n},"name {n}"\n' for n in range(1, 2501))
    (tmp_path / "r.csv").write_text("id,name\n" + lines)
    journal = Journal()
    first = _ctx(tmp_path, journal)
    first.crash_after = 3
    with pytest.raises(Crash):
        await scan(source(per="record", batch=400), first)
    assert len(journal.runs) == 1200 and journal.cursor["record"] == 1200
    assert (tmp_path / "r.csv").exists()  # not moved: it was not finished
    resume_at = journal.cursor["offset"]
    assert ("id,name\n" + lines).encode()[:resume_at].endswith(b'1200,"name 1200"\n')

    second = _ctx(tmp_path, journal)
    offsets_read: list[int] = []
    folder = (await second.connector()).folder()
    read = folder.read

    def spying_read(name: str, *, offset: int = 0):  # type: ignore[no-untyped-def]
        offsets_read.append(offset)
        return read(name, offset=offset)

    folder.read = spying_read  # type: ignore[method-assign]
    src = source(per="record", batch=400)
    await src.scan(second, folder)
    assert len(journal.runs) == 2500
    assert [p["record"]["id"] for p in journal.runs.values()] == [str(n) for n in range(1, 2501)]
    assert second.journal.commits == 3 + 4  # 1300 records left: 4 batches, none of them again
    assert offsets_read == [0, 0, resume_at]  # hash, CSV header, then the records from the cursor on
    assert (tmp_path / "done" / "r.csv").exists()


async def test_crash_after_the_last_batch_only_moves_the_file(tmp_path: Path) -> None:
    (tmp_path / "r.ndjson").write_text("".join(f'{{"n": {n}}}\n' for n in range(10)))
    journal = Journal()
    ctx = _ctx(tmp_path, journal)
    await scan(source(per="record", batch=5), ctx)
    (tmp_path / "done" / "r.ndjson").rename(tmp_path / "r.ndjson")  # as if the move never happened
    commits = journal.commits
    await scan(source(per="record", batch=5), _ctx(tmp_path, journal))
    assert journal.commits == commits and len(journal.runs) == 10
    assert (tmp_path / "done" / "r.ndjson").exists()


async def test_the_file_source_keeps_the_source_contract(tmp_path: Path) -> None:
    spec = FileSpec.model_validate({"connection": "drop", "pattern": "*.csv", "every": "1s", "stable_for": "0s"})
    ctx = await check_source(
        default_trigger_registry().get("file"), spec, DropOrigin(tmp_path), connector=local_connector(tmp_path)
    )
    assert len(ctx.accepted) == 7 and ctx.progress > 0
    # the last file may still wait for its move (the kit stops the source right after its commit)
    assert len(list((tmp_path / "done").iterdir())) + len(list(tmp_path.glob("*.csv"))) == 7


async def test_an_unreadable_file_does_not_block_the_others(tmp_path: Path) -> None:
    locked = tmp_path / "a-locked.csv"
    locked.write_text("id\n1\n")
    os.utime(locked, (1_700_000_000, 1_700_000_000))  # the oldest: taken first
    (tmp_path / "b.csv").write_text("id\n2\n")
    ctx = _ctx(tmp_path)
    folder = (await ctx.connector()).folder()
    read = folder.read

    def refusing_read(name: str, *, offset: int = 0):  # type: ignore[no-untyped-def]
        if name == "a-locked.csv":
            raise ConnectorError("drop: permission denied", reason="status", error_class="fatal")
        return read(name, offset=offset)

    folder.read = refusing_read  # type: ignore[method-assign]
    await source().scan(ctx, folder)
    assert [p["file"]["name"] for p in ctx.journal.runs.values()] == ["b.csv"]
    assert ctx.counts["file_errors"] == 1 and locked.exists()
