"""Streaming the records of a JSON file that is one top-level array (`per: record`, `format: json`).

The bytes are pushed chunk by chunk into ijson's yajl2_c parser (C; see the README's dependency
notes for why and what was measured), which hands back each element of the array once it is
complete: memory holds one chunk and the records not yet taken, never the file. Records are numbered
from 1 in array order; a resume after a crash parses the file again from the top and skips the
records up to the cursor's number (an array element has no line-aligned byte offset to seek to).

Values come out as everywhere else in the file trigger (`file_records.json_value`): integers as
`int`, numbers with a fraction or exponent as exact `Decimal`, plain `dict`/`list`; duplicate object
keys, NaN/Infinity and lone surrogate escapes (`\\ud800` with no pair, which yajl would turn into `?`)
are refused. A parse error raises `RecordError` with the number of the record it is in and its line,
after the records completed before it were handed out.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator
from typing import Any

import ijson

from runtime.triggers.file_records import Record, RecordError

_SURROGATE = re.compile(rb"(\\+)u[dD]([89a-fA-F])[0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
SLICE = 16 * 1024  # bytes given to the parser at once: the records it completes are held together


class _UniqueKeys(dict[str, Any]):
    """An object under construction that refuses a key given twice (ijson's `map_type`)."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise ValueError(f"duplicate key {key!r}")
        dict.__setitem__(self, key, value)


def _plain(value: Any) -> Any:
    """The record with its objects as plain dicts (as `json_value` gives them)."""
    kind = type(value)
    if kind is _UniqueKeys:
        return {key: _plain(item) for key, item in value.items()}
    if kind is list:
        return [_plain(item) for item in value]
    return value


def _judge(data: bytes, final: bool) -> tuple[int, int | None]:
    """How much of `data` can go to the parser now, and where a lone surrogate escape is (or None).

    Unless `final`, the last 11 bytes (and a run of backslashes reaching into them) wait for the next
    chunk, so every escape before the cut is seen with the one that may follow it: a high surrogate
    (`\\uD800`-`\\uDBFF`) must be followed at once by a low one (`\\uDC00`-`\\uDFFF`), a low one never
    comes alone. A backslash run of even length is escaped backslashes, not an escape."""
    cut = len(data) if final else max(len(data) - 11, 0)
    while 0 < cut < len(data) and data[cut - 1] == 0x5C:
        cut -= 1
    if b"\\u" not in data:
        return cut, None
    judged = 0
    for match in _SURROGATE.finditer(data):
        if match.start() >= cut:
            break
        if match.start() < judged or len(match.group(1)) % 2 == 0:
            continue
        if match.group(2) in b"89abAB":
            low = _LOW.match(data, match.end())
            if low is not None:
                judged = low.end()
                cut = max(cut, judged)
                continue
        return cut, match.end(1) - 1
    return cut, None


class JsonArrayReader:
    """The records of one JSON array file from its first byte; `skip`: the records already taken."""

    def __init__(self, encoding: str, *, skip: int = 0) -> None:
        self.encoding = encoding
        self.skip = skip
        self.number = 0  # records completed so far
        self.fed = 0  # bytes given to the parser
        self.lines = 0  # line breaks in them
        self._utf8 = codecs.lookup(encoding).name == "utf-8"
        self._decoder = None if self._utf8 else codecs.getincrementaldecoder(encoding)()
        self._carry = b""  # bytes held back for the next chunk (see _judge)
        self._items: Any = ijson.sendable_list()
        self._parser: Any = ijson.items_coro(self._items, "item", use_float=False, map_type=_UniqueKeys)
        self._started = False

    async def records(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[Record]:
        async for raw in chunks:
            data = self._utf8_bytes(raw, final=False)
            for start in range(0, len(data), SLICE):  # a few records at a time, whatever the chunk size
                taken, bad = self._push(data[start : start + SLICE])
                for record in taken:
                    yield record
                if bad is not None:
                    raise bad
        taken, bad = self._push(self._utf8_bytes(b"", final=True), final=True)
        for record in taken:
            yield record
        if bad is not None:
            raise bad
        if not self._started:
            raise RecordError("per: record needs a JSON array of records (the file is empty)", number=0, line=1)

    def _utf8_bytes(self, raw: bytes, *, final: bool) -> bytes:
        if self._decoder is None:
            return raw
        try:
            return self._decoder.decode(raw, final).encode("utf-8")
        except UnicodeDecodeError:
            raise RecordError(f"not {self.encoding} text", number=self.number + 1, line=self.lines + 1) from None

    def _push(self, chunk: bytes, *, final: bool = False) -> tuple[list[Record], RecordError | None]:
        """Give `chunk` to the parser: the records it completed (after those to skip), and the error
        that stopped it (the records before the error are handed out first)."""
        data = self._carry + chunk
        if not self._started:
            if not final and len(data) < 3 and b"\xef\xbb\xbf".startswith(data):
                self._carry = data  # maybe the start of a byte order mark
                return [], None
            data = self._start(data)
        cut, lone = _judge(data, final)
        bad: RecordError | None = None
        if lone is not None:
            cut, line = lone, self.lines + data.count(b"\n", 0, lone) + 1
            bad = RecordError("a \\u escape leaves a lone surrogate (half of a pair)", number=0, line=line)
        chunk, self._carry = data[:cut], data[cut:]
        try:
            if chunk:
                self._parser.send(chunk)
            if final and bad is None and self._started:
                self._parser.close()
        except ijson.JSONError as exc:
            bad = RecordError(_first_line(str(exc)), number=0, line=self._line_of(str(exc), chunk))
        except ValueError as exc:  # a duplicate key (from _UniqueKeys)
            bad = RecordError(f"invalid JSON: {exc}", number=0, line=self.lines + 1)
        except (RuntimeError, SystemError) as exc:  # a C backend that wraps the builder's error
            cause = exc.__cause__ or exc
            bad = RecordError(f"invalid JSON: {cause}", number=0, line=self.lines + 1)
        self.fed += len(chunk)
        self.lines += chunk.count(b"\n")
        taken = self._taken()
        if bad is not None:
            bad.number = self.number + 1
        return taken, bad

    def _start(self, chunk: bytes) -> bytes:
        """Before the first byte: drop a UTF-8 byte order mark, check the file starts an array."""
        if self.fed == 0 and self._utf8 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        first = chunk.lstrip(b" \t\r\n")[:1]
        if first:
            self._started = True
            if first != b"[":
                raise RecordError("per: record needs a JSON array of records", number=0, line=1)
        return chunk

    def _taken(self) -> list[Record]:
        items = self._items
        out: list[Record] = []
        for item in items:
            self.number += 1
            if self.number > self.skip:
                out.append(Record(_plain(item), self.number, 0, self.fed))
        del items[:]
        return out

    def _line_of(self, message: str, chunk: bytes) -> int:
        """The line of a yajl parse error: its message shows the text around it, the error under
        column 40 of the second line; that text is found in the chunk it came from."""
        parts = message.split("\n")
        context = parts[1] if len(parts) > 1 else ""
        text = context.lstrip(" ")
        if len(context) > 40 and text:
            flat = chunk.replace(b"\n", b" ").replace(b"\r", b" ")
            found = flat.find(text.encode("utf-8", "replace"))
            if found >= 0:
                at = found + 40 - (len(context) - len(text))
                return self.lines + chunk.count(b"\n", 0, max(at, 0)) + 1
        return self.lines + chunk.count(b"\n") + 1


def _first_line(message: str) -> str:
    first = message.split("\n", 1)[0].strip()
    return f"invalid JSON: {first}" if first else "invalid JSON"
