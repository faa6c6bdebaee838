"""Reading, writing and appending each format; atomic replacement; exact decimals."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runtime.connector_api import ConnectorError
from tests.connectors.files.conftest import Make, call

OPS: dict[str, dict[str, Any]] = {
    "read": {"action": "read", "path": "in.csv"},
    "write": {"action": "write", "path": "out/result.json"},
    "append": {"action": "append", "path": "log.ndjson"},
}


def test_read_csv_gives_objects_with_string_values(make: Make, base: Path) -> None:
    (base / "in.csv").write_text('id,name,amount\n1,"Smith, Ann",10.50\n2,Bob,\n\n3,"say ""hi""",7\n')
    assert call(make(OPS), "read") == [
        {"id": "1", "name": "Smith, Ann", "amount": "10.50"},
        {"id": "2", "name": "Bob", "amount": ""},
        {"id": "3", "name": 'say "hi"', "amount": "7"},
    ]


def test_read_csv_with_dialect_bom_and_short_rows(make: Make, base: Path) -> None:
    (base / "in.csv").write_bytes("\ufeffid;name\n1;'a;b'\n2\n".encode())
    connector = make(OPS, csv={"delimiter": ";", "quotechar": "'"})
    assert call(connector, "read") == [{"id": "1", "name": "a;b"}, {"id": "2", "name": ""}]


def test_read_csv_without_header_gives_lists(make: Make, base: Path) -> None:
    (base / "in.csv").write_text("1,a\n2,b\n")
    assert call(make(OPS), "read", {"csv": {"header": False}}) == [["1", "a"], ["2", "b"]]


def test_read_csv_refuses_long_rows_and_duplicate_columns(make: Make, base: Path) -> None:
    (base / "in.csv").write_text("id,name\n1,a,EXTRA\n")
    with pytest.raises(ConnectorError, match="record 2 has 3 fields; the header has 2") as caught:
        call(make(OPS), "read")
    assert (caught.value.reason, caught.value.error_class) == ("response", "fatal")
    (base / "in.csv").write_text("id,id\n1,2\n")
    with pytest.raises(ConnectorError, match="twice"):
        call(make(OPS), "read")


def test_read_json_keeps_decimals_exact(make: Make, base: Path) -> None:
    (base / "o.json").write_text('{"total": 0.30, "qty": 3, "lines": [{"price": 0.1}], "big": 12345678901234567890.12}')
    data = call(make(OPS), "read", {"path": "o.json"})
    assert data == {
        "total": Decimal("0.30"),
        "qty": 3,
        "lines": [{"price": Decimal("0.1")}],
        "big": Decimal("12345678901234567890.12"),
    }
    assert type(data["qty"]) is int
    assert data["lines"][0]["price"] * 3 == Decimal("0.3")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not a number"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": ', "invalid JSON at line 1"),
    ],
)
def test_read_json_refuses_bad_content(make: Make, base: Path, content: str, message: str) -> None:
    (base / "o.json").write_text(content)
    with pytest.raises(ConnectorError, match=message) as caught:
        call(make(OPS), "read", {"path": "o.json"})
    assert caught.value.reason == "response"
    assert str(base) not in str(caught.value)


def test_read_ndjson_and_text(make: Make, base: Path) -> None:
    (base / "e.ndjson").write_text('{"n": 1.5}\n\n{"n": 2}\n"x"\n')
    assert call(make(OPS), "read", {"path": "e.ndjson"}) == [{"n": Decimal("1.5")}, {"n": 2}, "x"]
    (base / "bad.jsonl").write_text('{"n": 1}\n{oops\n')
    with pytest.raises(ConnectorError, match="line 2: invalid JSON"):
        call(make(OPS), "read", {"path": "bad.jsonl"})
    (base / "notes.txt").write_text("héllo\nworld")
    assert call(make(OPS), "read", {"path": "notes.txt"}) == "héllo\nworld"
    assert call(make(OPS), "read", {"path": "notes.txt", "format": "text"}) == "héllo\nworld"


def test_read_other_encodings_and_invalid_text(make: Make, base: Path) -> None:
    (base / "l.txt").write_bytes("Grüße".encode("latin-1"))
    assert call(make(OPS, encoding="latin-1"), "read", {"path": "l.txt"}) == "Grüße"
    with pytest.raises(ConnectorError, match=r"not utf-8 text \(byte 2\)"):
        call(make(OPS), "read", {"path": "l.txt"})


def test_read_missing_file_and_size_limit(make: Make, base: Path) -> None:
    with pytest.raises(ConnectorError, match="no such file") as caught:
        call(make(OPS), "read", {"path": "nope.json"})
    assert (caught.value.reason, caught.value.error_class) == ("status", "fatal")
    assert str(base) not in str(caught.value)
    (base / "big.txt").write_text("x" * 100)
    with pytest.raises(ConnectorError, match="limit"):
        call(make(OPS, max_bytes=10), "read", {"path": "big.txt"})


def test_write_json_exact_and_creates_folders(make: Make, base: Path) -> None:
    data = {"total": Decimal("0.30"), "n": 3, "at": dt.date(2026, 1, 2), "name": "Ünïcode"}
    result = call(make(OPS), "write", data=data)
    assert result == {"path": "out/result.json", "bytes": (base / "out" / "result.json").stat().st_size}
    text = (base / "out" / "result.json").read_text()
    assert text == '{"total": 0.30, "n": 3, "at": "2026-01-02", "name": "Ünïcode"}\n'
    assert call(make(OPS), "read", {"path": "out/result.json"})["total"] == Decimal("0.30")


def test_write_takes_data_from_the_operation_or_the_step(make: Make, base: Path) -> None:
    call(make(OPS), "write", {"path": "a.json", "data": [1, 2]}, data="ignored")
    assert (base / "a.json").read_text() == "[1, 2]\n"
    with pytest.raises(ConnectorError, match="needs `data`"):
        call(make(OPS), "write", {"path": "b.json"})


def test_write_csv_ndjson_and_text(make: Make, base: Path) -> None:
    rows = [
        {"id": 1, "amount": Decimal("10.50"), "ok": True, "note": None},
        {"id": 2, "amount": Decimal("1E+2"), "extra": {"a": 1}},
    ]
    call(make(OPS), "write", {"path": "x.csv"}, data=rows)
    assert (base / "x.csv").read_text() == ('id,amount,ok,note,extra\n1,10.50,true,,\n2,100,,,"{""a"": 1}"\n')
    assert call(make(OPS), "read", {"path": "x.csv"})[1]["extra"] == '{"a": 1}'
    call(make(OPS), "write", {"path": "x.ndjson"}, data=[{"a": Decimal("0.1")}, 2])
    assert (base / "x.ndjson").read_text() == '{"a": 0.1}\n2\n'
    call(make(OPS), "write", {"path": "x.txt"}, data="plain\ntext")
    assert (base / "x.txt").read_text() == "plain\ntext"
    with pytest.raises(ConnectorError, match="text format writes a string"):
        call(make(OPS), "write", {"path": "y.txt"}, data={"a": 1})
    assert not (base / "y.txt").exists()


def test_write_replaces_atomically_and_keeps_the_mode(make: Make, base: Path) -> None:
    target = base / "out" / "result.json"
    target.parent.mkdir()
    target.write_text('{"old": true}\n')
    target.chmod(0o640)
    call(make(OPS), "write", data={"new": True})
    assert target.read_text() == '{"new": true}\n'
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(target.parent) == ["result.json"]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("out/result.json", {"ok": 1, "bad": object()}),
        ("out/result.json", [1, 2, {"nan": float("nan")}]),
        ("out/result.csv", [{"a": 1}, {"a": 2}, {"a": object()}]),
        ("out/result.ndjson", [{"a": 1}, {"b": object()}]),
    ],
)
def test_failed_write_leaves_the_old_file_and_no_temp_file(make: Make, base: Path, path: str, bad: Any) -> None:
    target = base / path
    target.parent.mkdir()
    target.write_text("OLD CONTENT\n")
    with pytest.raises(ConnectorError, match="cannot be written") as caught:
        call(make(OPS), "write", {"path": path}, data=bad)
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert target.read_text() == "OLD CONTENT\n"
    assert os.listdir(target.parent) == [target.name]  # the temporary file is gone


def test_failure_after_rows_reached_the_temp_file(make: Make, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure happens mid-write, after earlier rows went to the temporary file."""
    temps: list[str] = []
    written: list[str] = []
    real_mkstemp = tempfile.mkstemp
    real_fdopen = os.fdopen

    def mkstemp(**kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(**kwargs)
        temps.append(name)
        return fd, name

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        original = handle.write

        def record(chunk: str) -> int:
            written.append(chunk)
            return int(original(chunk))

        handle.write = record
        return handle

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fdopen", fdopen)
    (base / "out").mkdir()
    (base / "out" / "result.csv").write_text("OLD\n")
    with pytest.raises(ConnectorError, match="row 2"):
        call(make(OPS), "write", {"path": "out/result.csv"}, data=[{"ok": 1}, {"ok": object()}])
    monkeypatch.undo()
    assert "".join(written) == "ok\n1\n"  # header and first row went to the temporary file
    assert len(temps) == 1 and os.path.dirname(temps[0]) == str(base / "out")
    assert not os.path.exists(temps[0])
    assert (base / "out" / "result.csv").read_text() == "OLD\n"
    assert os.listdir(base / "out") == ["result.csv"]


def test_append_ndjson(make: Make, base: Path) -> None:
    connector = make(OPS)
    assert call(connector, "append", data={"n": Decimal("1.10")}) == {"path": "log.ndjson", "bytes": 12}
    call(connector, "append", data=[{"n": 2}, {"n": 3}])
    (base / "log.ndjson").write_text((base / "log.ndjson").read_text() + '{"n": 4}')  # no final newline
    call(connector, "append", data={"n": 5})
    assert (base / "log.ndjson").read_text() == '{"n": 1.10}\n{"n": 2}\n{"n": 3}\n{"n": 4}\n{"n": 5}\n'


def test_append_csv_writes_the_header_once_and_follows_it(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "append", {"path": "t.csv"}, data=[{"b": 1, "a": "x"}])
    call(connector, "append", {"path": "t.csv"}, data=[{"a": "y", "b": 2}, {"a": "z"}])
    assert (base / "t.csv").read_text() == "b,a\n1,x\n2,y\n,z\n"
    with pytest.raises(ConnectorError, match=r"columns the file has not: \['c'\]"):
        call(connector, "append", {"path": "t.csv"}, data=[{"a": 1, "c": 2}])
    assert (base / "t.csv").read_text() == "b,a\n1,x\n2,y\n,z\n"


def test_append_text_and_refuse_json(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "append", {"path": "n.txt"}, data="a")
    call(connector, "append", {"path": "n.txt"}, data="b\n")
    assert (base / "n.txt").read_text() == "ab\n"
    with pytest.raises(ConnectorError, match="append works for ndjson, csv and text"):
        call(connector, "append", {"path": "n.json"}, data={"a": 1})


def test_dry_run_writes_nothing(make: Make, base: Path) -> None:
    result = call(make(OPS), "write", data={"a": 1}, dry_run=True)
    assert result["path"] == "out/result.json"
    assert call(make(OPS), "append", data={"a": 1}, dry_run=True)["bytes"] == 9
    assert list(base.iterdir()) == []


@pytest.mark.parametrize("path", ["deep.json", "deep.ndjson", "deep.csv"])
def test_deeply_nested_data_fails_clearly(make: Make, base: Path, path: str) -> None:
    deep: Any = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(ConnectorError, match="it is nested too deeply") as caught:
        call(make(OPS), "write", {"path": path}, data=[{"a": deep}])
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert not (base / path).exists()


def test_a_recursion_error_anywhere_is_a_clear_error(make: Make, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`glob` recurses per folder level for `**`; a tree deeper than the limit made by someone else."""
    import connectors.files.connector as module

    def deep_glob(*args: Any, **kwargs: Any) -> list[str]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(module.glob, "glob", deep_glob)
    with pytest.raises(ConnectorError, match="nested too deeply during list") as caught:
        call(make({"l": {"action": "list", "pattern": "**/*"}}), "l")
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
