"""The source of a `file` trigger: scan a connection's folder, take complete files, turn them into runs.

Every `every` the folder is listed. A file is *complete* when its name has no temporary suffix and
does not start with `.` (writers that rename when done are taken at once), and its size and mtime
stayed the same for `stable_for` (watched across scans with the trigger's clock).

- `per: file`: the file is read whole (up to `max_bytes`), hashed (sha256) and parsed; one event
  `{content, file: {name, size, mtime, sha256}}` keyed by the hash (with `on_duplicate: process`, by
  name, hash and mtime), so the same content dropped again is no new run.
- `per: record`: a first pass hashes the file (streaming); a second streams its records in batches
  of `batch`, each committed with `accept(events, cursor={file, sha256, mtime, record, offset, line})`;
  event keys are `<hash>:<record number>`, payloads `{record, number, line, file}`. After a crash
  the cursor's file is taken first and read again from the byte offset after the last committed
  record (the CSV header is read again from the top). A JSON file (one top-level array) streams
  through ijson (runtime/triggers/file_json.py): its records are the array's elements, and a resume
  parses it again from the top and skips the records up to the cursor's number. Memory holds one
  batch, never the file.
- Afterwards the file moves to `done/`. A file that cannot be parsed moves to `failed/` with
  `<name>.reason.txt` (record number, line, what is wrong); the bad record is dead-lettered
  (reason `unparseable`). The records before it have run (they were committed batch by batch);
  the records after it are *not* run: after a broken record a legacy file cannot be trusted (a
  quote error swallows the lines after it, a truncated transfer ends mid-record). Fixing the file
  and dropping it again makes a new file (new hash): the flow's own idempotency keys keep the
  records that ran once from being applied twice.

Between batches and files the source waits for `ctx.ready()` (backpressure). Nothing is logged
without `ctx.redact`.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.connector_api import ConnectorError, Folder, FolderEntry, HasFolder
from runtime.source_api import SourceContext, SourceError, SourceEvent
from runtime.spec.common import parse_duration
from runtime.triggers.file_json import JsonArrayReader
from runtime.triggers.file_records import (
    Column,
    Layout,
    RecordError,
    RecordReader,
    json_value,
    line_break_is_one_byte,
)

if TYPE_CHECKING:
    from runtime.triggers.file import FileSpec

_EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
MIN_WAIT = 0.05  # seconds: the shortest wait between two scans


class FileFailed(Exception):
    """A file that cannot be parsed: goes to failed/ with this reason."""

    def __init__(self, reason: str, *, number: int | None = None, line: int | None = None) -> None:
        super().__init__(reason)
        self.number = number
        self.line = line


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float


class FileSource:
    """The source of one flow's file trigger (see the module docstring)."""

    def __init__(self, spec: FileSpec) -> None:
        from runtime.triggers.file import parse_size

        self.spec = spec
        self.every = parse_duration(spec.every)
        self.stable_for = parse_duration(spec.stable_for)
        self.max_bytes = parse_size(spec.max_bytes)
        self._seen: dict[str, _Seen] = {}

    # ------------------------------------------------------------------------------- scanning
    async def run(self, ctx: SourceContext) -> None:
        connector = await ctx.connector()
        if not isinstance(connector, HasFolder):
            raise SourceError(f"connection {self.spec.connection!r} offers no folder to take files from")
        folder = connector.folder()
        if not line_break_is_one_byte(folder.encoding):
            raise SourceError(
                f"files in {folder.encoding} cannot be streamed by line; use utf-8 or a single-byte encoding"
            )
        while True:
            try:
                wait = await self.scan(ctx, folder)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the folder went away (SFTP down): try again next scan
                ctx.count("failures")
                ctx.log.warning("file source of %s: %s; next scan in %.1fs", ctx.flow, ctx.redact(str(exc)), self.every)
                wait = self.every
            await ctx.clock.sleep(wait)

    async def scan(self, ctx: SourceContext, folder: Folder) -> float:
        """One scan: take every complete file; returns how long to wait before the next one."""
        spec = self.spec
        entries = await folder.list(spec.pattern)
        ctx.progressed()
        now = ctx.clock.time()
        listed = {entry.name for entry in entries}
        self._seen = {name: seen for name, seen in self._seen.items() if name in listed}
        ready: list[FolderEntry] = []
        wait = self.every
        for entry in sorted(entries, key=lambda e: (e.mtime, e.name)):
            if not self._candidate(entry.name):
                continue
            left = self._left(entry, now)
            if left <= 0:
                ready.append(entry)
            else:
                wait = min(wait, left)
        cursor = await ctx.cursor()
        if isinstance(cursor, dict):  # a file interrupted mid-way goes first
            ready.sort(key=lambda e: e.name != cursor.get("file"))
        for entry in ready:
            await ctx.ready()
            try:
                await self.take(ctx, folder, entry)
            except ConnectorError as exc:
                if exc.retriable:
                    raise  # the folder went away: the whole scan is tried again
                # this file cannot be read or moved (permissions, a folder in its way): the others go on
                ctx.count("file_errors")
                name = ctx.redact(entry.name)
                ctx.log.warning("file source of %s: %s skipped: %s", ctx.flow, name, ctx.redact(str(exc)))
                continue
            self._seen.pop(entry.name, None)
        return max(wait, MIN_WAIT)

    def _candidate(self, name: str) -> bool:
        spec = self.spec
        if name.startswith((spec.done + "/", spec.failed + "/")):
            return False
        base = posixpath.basename(name)
        return not base.startswith(".") and not base.lower().endswith(tuple(t.lower() for t in spec.temporary))

    def _left(self, entry: FolderEntry, now: float) -> float:
        """Seconds until the file counts as complete (0 or less: it is)."""
        if self.stable_for <= 0:
            return 0.0
        seen = self._seen.get(entry.name)
        if seen is None or (seen.size, seen.mtime) != (entry.size, entry.mtime):
            self._seen[entry.name] = _Seen(entry.size, entry.mtime, now)
            return self.stable_for
        return seen.since + self.stable_for - now

    # ------------------------------------------------------------------------------- one file
    def _format(self, name: str) -> str:
        return self.spec.format or _EXTENSIONS.get(posixpath.splitext(name)[1].lower(), "text")

    def _layout(self, name: str) -> Layout:
        spec = self.spec
        columns: tuple[Column, ...] = ()
        if spec.columns is not None:
            columns = tuple(Column(c.name, c.start, c.width) for c in spec.columns)
        elif spec.widths is not None and spec.names is not None:
            start, built = 1, []
            for width, column_name in zip(spec.widths, spec.names, strict=True):
                built.append(Column(column_name, start, width))
                start += width
            columns = tuple(built)
        return Layout(
            self._format(name),
            delimiter=spec.csv.delimiter,
            quotechar=spec.csv.quotechar,
            header=spec.csv.header,
            columns=columns,
            strip=spec.strip,
        )

    async def take(self, ctx: SourceContext, folder: Folder, entry: FolderEntry) -> None:
        """Turn one complete file into runs, then move it to done/ (or failed/)."""
        try:
            if self.spec.per == "file":
                await self._take_file(ctx, folder, entry)
            else:
                await self._take_records(ctx, folder, entry)
        except FileFailed as failed:
            await self._fail(ctx, folder, entry, failed)
            return
        moved = await folder.move(entry.name, self.spec.done)
        ctx.count("files_done")
        ctx.log.info("file source of %s: %s done (%s)", ctx.flow, ctx.redact(entry.name), ctx.redact(moved))

    def _file_meta(self, entry: FolderEntry, sha: str) -> dict[str, Any]:
        return {"name": entry.name, "size": entry.size, "mtime": entry.mtime, "sha256": sha}

    def _prefix(self, entry: FolderEntry, sha: str) -> str:
        return sha if self.spec.on_duplicate == "skip" else f"{entry.name}:{sha}:{entry.mtime!r}"

    async def _read_whole(self, folder: Folder, entry: FolderEntry) -> tuple[bytes, str]:
        digest = hashlib.sha256()
        parts: list[bytes] = []
        size = 0
        async for chunk in folder.read(entry.name):
            size += len(chunk)
            if size > self.max_bytes:
                raise FileFailed(
                    f"the file is larger than max_bytes ({self.spec.max_bytes}); "
                    "use per: record (csv, json arrays, ndjson, text and fixed_width stream)"
                )
            digest.update(chunk)
            parts.append(chunk)
        return b"".join(parts), digest.hexdigest()

    async def _take_file(self, ctx: SourceContext, folder: Folder, entry: FolderEntry) -> None:
        raw, sha = await self._read_whole(folder, entry)
        meta = self._file_meta(entry, sha)
        key = self._prefix(entry, sha)
        try:
            content = await _parse_whole(raw, self._layout(entry.name), folder.encoding)
        except RecordError as exc:
            event = SourceEvent({"file": meta}, key=key, meta={"file": entry.name, "line": exc.line})
            where = f"record {exc.number}, line {exc.line}" if exc.number else f"line {exc.line}"
            message = f"{entry.name}: {where}: {exc}"
            await ctx.dead_letter(event, "unparseable", message)
            raise FileFailed(f"{where}: {exc}", number=exc.number, line=exc.line) from None
        event = SourceEvent({"content": content, "file": meta}, key=key, meta={"file": entry.name, "sha256": sha})
        (accepted,) = await ctx.accept([event])
        if not accepted.created:
            ctx.count("duplicates")
            ctx.log.info(
                "file source of %s: %s was taken before (same content); skipped", ctx.flow, ctx.redact(entry.name)
            )

    async def _hash(self, folder: Folder, name: str) -> str:
        digest = hashlib.sha256()
        async for chunk in folder.read(name):
            digest.update(chunk)
        return digest.hexdigest()

    async def _take_records(self, ctx: SourceContext, folder: Folder, entry: FolderEntry) -> None:
        spec = self.spec
        sha = await self._hash(folder, entry.name)
        cursor = await ctx.cursor()
        resume = cursor if _same_file(cursor, entry, sha) else None
        if resume is not None:
            name = ctx.redact(entry.name)
            ctx.log.info("file source of %s: %s resumes after record %s", ctx.flow, name, resume.get("record"))
        layout = self._layout(entry.name)
        meta = self._file_meta(entry, sha)
        prefix = self._prefix(entry, sha)
        records = self._records(folder, entry, layout, resume)
        events: list[SourceEvent] = []
        created = total = 0
        position: dict[str, Any] = {}
        try:
            async for record in records:
                payload = {"record": record.value, "number": record.number, "line": record.line, "file": meta}
                events.append(
                    SourceEvent(
                        payload, key=f"{prefix}:{record.number}", meta={"file": entry.name, "record": record.number}
                    )
                )
                position = {"record": record.number, "offset": record.end, "line": record.line}
                if len(events) >= spec.batch:
                    created += await self._commit(ctx, events, entry, sha, position)
                    total += len(events)
                    events = []
        except RecordError as exc:
            created += await self._commit(ctx, events, entry, sha, position)
            total += len(events)
            bad = SourceEvent(
                {"number": exc.number, "line": exc.line, "file": meta},
                key=f"{prefix}:{exc.number}",
                meta={"file": entry.name, "record": exc.number, "line": exc.line},
            )
            where = f"record {exc.number}, line {exc.line}" if exc.number else f"line {exc.line}"
            await ctx.dead_letter(bad, "unparseable", f"{entry.name}: {where}: {exc}")
            ran = f"records before it were taken ({total} in this pass)" if total else "no record before it"
            raise FileFailed(
                f"{where}: {exc}\n{ran}; the records after it were not run", number=exc.number, line=exc.line
            ) from None
        created += await self._commit(ctx, events, entry, sha, position)
        total += len(events)
        if total and not created and resume is None:
            ctx.count("duplicates")
            ctx.log.info(
                "file source of %s: every record of %s was taken before; skipped", ctx.flow, ctx.redact(entry.name)
            )

    async def _commit(
        self, ctx: SourceContext, events: list[SourceEvent], entry: FolderEntry, sha: str, position: dict[str, Any]
    ) -> int:
        if not events:
            return 0
        await ctx.ready()
        cursor = {"file": entry.name, "sha256": sha, "mtime": entry.mtime, **position}
        accepted = await ctx.accept(events, cursor=cursor)
        ctx.count("records", len(events))
        return sum(1 for a in accepted if a.created)

    async def _records(
        self, folder: Folder, entry: FolderEntry, layout: Layout, resume: dict[str, Any] | None
    ) -> AsyncIterator[Any]:
        """The file's records, after the cursor's record when resuming."""
        done = int(resume.get("record", 0)) if resume else 0
        if layout.format == "json":
            json_reader = JsonArrayReader(folder.encoding, skip=done)
            async for record in json_reader.records(folder.read(entry.name)):
                yield record
            return
        offset = int(resume.get("offset", 0)) if resume else 0
        header: list[str] | None = None
        if offset and layout.format == "csv" and layout.header:
            header = await _csv_header(folder, entry.name, layout)
        line = int(resume.get("line", 0)) if resume else 0
        reader = RecordReader(layout, folder.encoding, header=header, number=done, line=line)
        async for record in reader.records(folder.read(entry.name, offset=offset), offset):
            yield record

    async def _fail(self, ctx: SourceContext, folder: Folder, entry: FolderEntry, failed: FileFailed) -> None:
        moved = await folder.move(entry.name, self.spec.failed)
        reason = f"{entry.name} could not be processed by flow {ctx.flow}:\n{failed}\n"
        await folder.write_text(posixpath.join(self.spec.failed, posixpath.basename(moved) + ".reason.txt"), reason)
        ctx.count("files_failed")
        ctx.log.warning("file source of %s: %s failed: %s", ctx.flow, ctx.redact(entry.name), ctx.redact(str(failed)))


def _same_file(cursor: Any, entry: FolderEntry, sha: str) -> bool:
    """Whether the cursor was left by this file, unchanged (a resume point)."""
    if not isinstance(cursor, dict) or (cursor.get("file"), cursor.get("sha256")) != (entry.name, sha):
        return False
    try:  # the store gives numbers with a fraction back as exact decimals
        return float(cursor["mtime"]) == entry.mtime
    except (KeyError, TypeError, ValueError):
        return False


async def _one_chunk(raw: bytes) -> AsyncIterator[bytes]:
    yield raw


async def _parse_whole(raw: bytes, layout: Layout, encoding: str) -> Any:
    """The content of a whole file (per: file)."""
    if layout.format in ("json", "text"):
        text = _decode(raw, encoding)
        if layout.format == "text":
            return text
        try:
            return json_value(text)
        except ValueError as exc:
            raise RecordError(str(exc), number=0, line=_line_of(exc)) from None
    reader = RecordReader(layout, encoding)
    return [record.value async for record in reader.records(_one_chunk(raw))]


def _decode(raw: bytes, encoding: str) -> str:
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RecordError(f"not {encoding} text", number=0, line=line) from None


def _line_of(exc: ValueError) -> int:
    text = str(exc)
    marker = " at line "
    if marker in text:
        digits = text.split(marker, 1)[1].split(" ", 1)[0]
        if digits.isdigit():
            return int(digits)
    return 1


async def _csv_header(folder: Folder, name: str, layout: Layout) -> list[str] | None:
    """The header row of a CSV file (read from the top when resuming mid-file)."""
    reader = RecordReader(layout, folder.encoding)
    stream = folder.read(name)
    try:
        async for _record in reader.records(stream):
            break
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
    return reader.header
