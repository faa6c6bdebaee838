"""Reading and writing the file formats: CSV, JSON, NDJSON and text.

Parsing is strict and exact: JSON numbers with a fraction become `Decimal` (integers stay `int`),
`NaN`/`Infinity` and duplicate object keys are refused, CSV rows longer than the header are refused.
Writing keeps decimals exact (simplejson `use_decimal`) and never writes `NaN`.
Errors are `FormatError` with a message that names no host path; the connector adds the file name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TextIO

import simplejson

from connectors.files.models import CsvOptions, FileFormat
from runtime.expr.jsonvalues import LoneSurrogateError, check_text


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
        return check_text(text, value)
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


def csv_columns(rows: Iterable[Any]) -> list[str]:
    """Every key of the object rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, Mapping):
            seen.update(dict.fromkeys(str(key) for key in row))
    return list(seen)


def write_csv(
    out: TextIO, data: Any, options: CsvOptions, columns: Sequence[str] | None = None, *, header: bool
) -> None:
    """Write rows (objects or lists) as CSV; `columns` fixes the column order (an existing header)."""
    rows = _records(data)
    writer = csv.writer(out, delimiter=options.delimiter, quotechar=options.quotechar, lineterminator="\n")
    names = list(columns) if columns is not None else csv_columns(rows)
    if header and names and columns is None:
        writer.writerow(names)
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            unknown = [str(key) for key in row if str(key) not in names]
            if unknown:
                raise FormatError(f"row {number} has columns the file has not: {unknown}")
            values = [row.get(name) for name in names]
        elif isinstance(row, list | tuple):
            values = list(row)
        else:
            raise FormatError(f"row {number} is a {type(row).__name__}, not an object or a list")
        try:
            writer.writerow([_cell(value) for value in values])
        except TypeError as exc:
            raise FormatError(f"row {number}: {exc}") from None


def write(out: TextIO, data: Any, fmt: FileFormat, options: CsvOptions, *, header: bool = True) -> None:
    """Write `data` to `out` in format `fmt` (JSON streams chunk by chunk)."""
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
            write_csv(out, data, options, header=header and options.header)
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"data cannot be written as {fmt.value}: {exc}") from None
