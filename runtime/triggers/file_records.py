"""Streaming the records of a dropped file: CSV, NDJSON, text lines and fixed-width lines.

Records are read from an async stream of byte chunks, one line at a time, so a file of any size is
parsed in bounded memory. Every record carries its number (1-based, the CSV header not counted),
the line it starts on and the byte offset just after it: the `file` trigger stores the offset in its
cursor and, after a crash, opens the file again at that offset instead of reading it from the top.

A CSV record ends at a line break outside quotes (the count of quote characters in the record so far
is even; a doubled quote inside a field counts twice, so it keeps the count even), so a quoted field
may hold line breaks. Blank lines are skipped in every format. Only encodings in which a line break
is the single byte 0x0A (UTF-8, Latin-1, cp1252 ...) are accepted for streaming.

Parsing is exact, as in the file connector: JSON numbers with a fraction become `Decimal`, duplicate
object keys and NaN/Infinity are refused, a CSV row longer than its header is refused. A record that
cannot be parsed raises `RecordError` with its number and line.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import simplejson

from runtime.connector_api import LoneSurrogateError, check_json_text


class RecordError(ValueError):
    """A record (or the whole file) that cannot be parsed; `number` and `line` say where."""

    def __init__(self, message: str, *, number: int, line: int) -> None:
        super().__init__(message)
        self.number = number
        self.line = line


@dataclass
class Record:
    """One parsed record: its value, number, first line, and the byte offset just after it."""

    value: Any
    number: int
    line: int
    end: int


@dataclass(frozen=True)
class Column:
    """A fixed-width column: its name, 1-based start position and width (in characters)."""

    name: str
    start: int
    width: int


@dataclass(frozen=True)
class Layout:
    """How to parse records: the format and its options."""

    format: str  # csv | ndjson | text | fixed_width | json
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: tuple[Column, ...] = ()
    strip: bool = True


def line_break_is_one_byte(encoding: str) -> bool:
    """Whether lines of text in `encoding` can be split on the byte 0x0A."""
    try:
        return "\n".encode(encoding) == b"\n" and "a".encode(encoding) == b"a"
    except (LookupError, UnicodeError):
        return False


async def lines(chunks: AsyncIterator[bytes], offset: int = 0) -> AsyncIterator[tuple[bytes, int]]:
    """(line without its line break, offset just after it) for every line of the stream."""
    buffer = bytearray()
    position = offset
    async for chunk in chunks:
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            position += end + 1 - start
            yield bytes(buffer[start:end]), position
            start = end + 1
        del buffer[:start]
    if buffer:
        position += len(buffer)
        yield bytes(buffer), position


def json_value(text: str) -> Any:
    """One JSON value, exact (decimals), with duplicate keys and NaN/Infinity refused."""
    try:
        value = simplejson.loads(
            text, use_decimal=True, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
        )
        return check_json_text(text, value)
    except LoneSurrogateError as exc:
        raise ValueError(str(exc)) from None
    except simplejson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class RecordReader:
    """Turns the lines of one file into records (see the module docstring).

    `header` is the CSV header when resuming mid-file (read earlier from the top of the file);
    `number` and `line` are the last record number and line already taken."""

    def __init__(
        self,
        layout: Layout,
        encoding: str,
        *,
        header: Sequence[str] | None = None,
        number: int = 0,
        line: int = 0,
    ) -> None:
        self.layout = layout
        self.encoding = encoding
        self.header: list[str] | None = list(header) if header is not None else None
        self.number = number
        self.line = line
        self._bom = encoding.lower().replace("_", "-") in ("utf-8", "utf8") and line == 0

    def _decode(self, raw: bytes) -> str:
        if self._bom:
            self._bom = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise RecordError(
                f"not {self.encoding} text (byte {exc.start} of the line)", number=self.number + 1, line=self.line
            ) from None
        return text[:-1] if text.endswith("\r") else text

    async def records(self, chunks: AsyncIterator[bytes], offset: int = 0) -> AsyncIterator[Record]:
        """The records of the stream that starts at byte `offset`."""
        layout = self.layout
        pending: list[str] = []
        pending_line = 0
        quotes = 0
        async for raw, end in lines(chunks, offset):
            self.line += 1
            text = self._decode(raw)
            if layout.format == "csv":
                if not pending:
                    if not text.strip():
                        continue
                    pending_line = self.line
                pending.append(text)
                quotes += text.count(layout.quotechar)
                if quotes % 2:
                    continue  # a quoted field goes on on the next line
                record_text, pending, quotes = "\n".join(pending), [], 0
                value = self._csv(record_text, pending_line)
                if value is None:
                    continue  # the header
                yield Record(value, self.number, pending_line, end)
                continue
            if not text.strip():
                continue
            self.number += 1
            yield Record(self._line_value(text), self.number, self.line, end)
        if pending:
            raise RecordError(
                f"a quoted field opened on line {pending_line} is never closed",
                number=self.number + 1,
                line=pending_line,
            )

    def _csv(self, text: str, line: int) -> Any:
        layout = self.layout
        try:
            row = next(csv.reader([text], delimiter=layout.delimiter, quotechar=layout.quotechar, strict=True))
        except (csv.Error, StopIteration) as exc:
            raise RecordError(f"invalid CSV: {exc}", number=self.number + 1, line=line) from None
        if layout.header and self.header is None:
            duplicates = sorted({name for name in row if row.count(name) > 1})
            if duplicates:
                raise RecordError(f"the header names columns twice: {duplicates}", number=0, line=line)
            self.header = row
            return None
        self.number += 1
        if self.header is None:
            return row
        width = len(self.header)
        if len(row) > width:
            raise RecordError(f"{len(row)} fields; the header has {width}", number=self.number, line=line)
        return dict(zip(self.header, [*row, *[""] * (width - len(row))], strict=True))

    def _line_value(self, text: str) -> Any:
        layout = self.layout
        if layout.format == "ndjson":
            try:
                return json_value(text)
            except ValueError as exc:
                raise RecordError(str(exc), number=self.number, line=self.line) from None
        if layout.format == "fixed_width":
            fields = {}
            for column in layout.columns:
                value = text[column.start - 1 : column.start - 1 + column.width]
                fields[column.name] = value.strip() if layout.strip else value
            return fields
        return text
