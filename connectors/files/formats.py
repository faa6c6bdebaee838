"""Reading and writing the file formats: CSV, JSON, NDJSON and text.

Parsing is strict and exact: JSON numbers with a fraction become `Decimal` (integers stay `int`),
`NaN`/`Infinity` and duplicate object keys are refused, CSV rows longer than the header are refused.
Writing keeps decimals exact (simplejson `use_decimal`) and never writes `NaN`. CSV output quotes every
field holding the delimiter, the quote character, CR or LF, and by default neutralises text a
spreadsheet would run as a formula (`neutralise_formula`).
Errors are `FormatError` with a message that names no host path; the connector adds the file name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TextIO

import simplejson

from connectors.files.models import CsvOptions, FileFormat
from runtime.connector_api import LoneSurrogateError, check_json_text


class FormatError(ValueError):
    """The content cannot be parsed, or the data cannot be written, in the format asked for."""


# --- reading ----------------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormatError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise FormatError(f"{name} is not a number JSON allows")


def _json_value(text: str) -> Any:
    try:
        value = simplejson.loads(
            text, use_decimal=True, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
        )
        return check_json_text(text, value)
    except LoneSurrogateError as exc:
        raise FormatError(str(exc)) from None
    except simplejson.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise FormatError("JSON nested too deeply") from None


def parse(text: str, fmt: FileFormat, options: CsvOptions) -> Any:
    """The data held by `text` in format `fmt`."""
    if fmt is FileFormat.text:
        return text
    if fmt is FileFormat.json:
        return _json_value(text)
    if fmt is FileFormat.ndjson:
        values = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    values.append(_json_value(line))
                except FormatError as exc:
                    raise FormatError(f"line {number}: {exc}") from None
        return values
    return _parse_csv(text, options)


def _parse_csv(text: str, options: CsvOptions) -> list[Any]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=options.delimiter, quotechar=options.quotechar)
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise FormatError(f"invalid CSV at line {reader.line_num}: {exc}") from None
    if not options.header:
        return rows
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise FormatError(f"the header names columns twice: {duplicates}")
    width = len(header)
    records = []
    for number, row in enumerate(body, start=2):
        if len(row) > width:
            raise FormatError(f"record {number} has {len(row)} fields; the header has {width}")
        records.append(dict(zip(header, [*row, *[""] * (width - len(row))], strict=True)))
    return records


# --- writing ----------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


def _dumps(value: Any) -> str:
    return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, allow_nan=False, default=_json_default)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return _dumps(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} value cannot be written to CSV")


def _records(data: Any) -> list[Any]:
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list | tuple):
        return list(data)
    raise FormatError(f"CSV needs a list of rows, not a {type(data).__name__}")


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def neutralise_formula(text: str) -> str:
    """`text` with a `'` in front when a spreadsheet would read it as a formula (`=1+1` → `'=1+1`).

    A text that is a plain number (`-5`, `+3.25`, `-1e5`) is left alone: a spreadsheet reads it as that
    number, never as a formula, so negative amounts from a CSV that was read keep their sign."""
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class _CsvWriter:
    """Writes CSV rows with `\n` line ends, quoting every field that holds the delimiter, the quote
    character, CR or LF (Python 3.11's `csv` module leaves a bare CR unquoted when the line end is
    `\n`, and a reader then splits the row there). Quotes inside a quoted field are doubled."""

    def __init__(self, out: TextIO, options: CsvOptions, *, escape_formulas: bool) -> None:
        self._out = out
        self._quote = options.quotechar
        self._delimiter = options.delimiter
        self._special = re.compile("[" + re.escape(options.quotechar) + "\r\n]").search
        self._escape = escape_formulas
        self._columns: dict[Any, str] = {}

    def text(self, value: Any) -> str:
        """A cell's text; data strings are neutralised when formulas are escaped (numbers never are)."""
        if type(value) is str:
            return neutralise_formula(value) if self._escape else value
        text = _cell(value)
        return neutralise_formula(text) if self._escape and isinstance(value, str) else text

    def column(self, key: Any, known: set[str]) -> str:
        """The column a row's key writes to: its escaped name, or the name as it is when a file
        written without escaping has that column (`known` does not change during one write)."""
        name = self._columns.get(key)
        if name is None:
            raw = str(key)
            name = self.text(raw)
            name = raw if name not in known and raw in known else name
            self._columns[key] = name
        return name

    def _field(self, text: str) -> str:
        if self._delimiter in text or self._special(text):
            return self._quote + text.replace(self._quote, self._quote * 2) + self._quote
        return text

    def writerow(self, texts: Sequence[str]) -> None:
        line = self._delimiter.join(texts)
        # fast path: no quote, CR or LF anywhere and no delimiter inside a field
        if self._special(line) or line.count(self._delimiter) != len(texts) - 1:
            line = self._delimiter.join([self._field(text) for text in texts])
        elif len(texts) == 1 and not line:
            line = self._quote * 2  # a row of one empty field, not a blank line a reader skips
        self._out.write(line + "\n")


def csv_columns(rows: Iterable[Any]) -> list[str]:
    """Every key of the object rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, Mapping):
            seen.update(dict.fromkeys(str(key) for key in row))
    return list(seen)


def write_csv(
    out: TextIO,
    data: Any,
    options: CsvOptions,
    columns: Sequence[str] | None = None,
    *,
    header: bool,
    escape_formulas: bool = True,
) -> None:
    """Write rows (objects or lists) as CSV; `columns` fixes the column order (an existing header, as
    written in the file). With `escape_formulas`, strings that a spreadsheet would run as a formula
    get a leading `'` (column names too; see `neutralise_formula`)."""
    rows = _records(data)
    writer = _CsvWriter(out, options, escape_formulas=escape_formulas)
    names = list(columns) if columns is not None else [writer.text(name) for name in csv_columns(rows)]
    known = set(names)
    if columns is None and len(known) < len(names):
        raise FormatError("two column names are the same once formulas are escaped (e.g. `=a` and `'=a`)")
    if header and names and columns is None:
        writer.writerow(names)
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            cells = {writer.column(key, known): value for key, value in row.items()}
            if not known.issuperset(cells):
                unknown = [str(key) for key in row if writer.column(key, known) not in known]
                raise FormatError(f"row {number} has columns the file has not: {unknown}")
            if len(cells) != len(row):
                raise FormatError(f"row {number} names a column twice: {[str(key) for key in row]}")
            values = [cells.get(name) for name in names]
        elif isinstance(row, list | tuple):
            values = list(row)
        else:
            raise FormatError(f"row {number} is a {type(row).__name__}, not an object or a list")
        try:
            writer.writerow([writer.text(value) for value in values])
        except TypeError as exc:
            raise FormatError(f"row {number}: {exc}") from None


def write(
    out: TextIO,
    data: Any,
    fmt: FileFormat,
    options: CsvOptions,
    *,
    header: bool = True,
    escape_formulas: bool = True,
) -> None:
    """Write `data` to `out` in format `fmt` (JSON streams chunk by chunk); `escape_formulas` is for CSV."""
    try:
        if fmt is FileFormat.text:
            if not isinstance(data, str):
                raise FormatError(f"text format writes a string, not a {type(data).__name__}")
            out.write(data)
        elif fmt is FileFormat.json:
            encoder = simplejson.JSONEncoder(
                use_decimal=True, ensure_ascii=False, allow_nan=False, default=_json_default
            )
            for chunk in encoder.iterencode(data):
                out.write(chunk)
            out.write("\n")
        elif fmt is FileFormat.ndjson:
            for item in data if isinstance(data, list | tuple) else [data]:
                out.write(_dumps(item))
                out.write("\n")
        else:
            write_csv(out, data, options, header=header and options.header, escape_formulas=escape_formulas)
    except RecursionError:
        raise FormatError(f"data cannot be written as {fmt.value}: it is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"data cannot be written as {fmt.value}: {exc}") from None
