"""`trigger: {file: ...}`: files dropped into a connection's folder (local or SFTP) become runs.

One run per file, or one run per record of the file (CSV, NDJSON, text lines, fixed-width lines,
the elements of a JSON array). A file is taken only when complete, moved to `done/` once all its runs
are committed, or to `failed/` with a `<name>.reason.txt` beside it; a file dropped twice (same
content) is skipped. Large files stream in batches, and a crash mid-file resumes after the last
committed batch. The source is runtime/triggers/file_source.py; the folder comes from the
connection's connector (`connector_api.Folder`: the `file` and `sftp` connectors provide one).
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from runtime.source_api import TriggerType
from runtime.spec.common import Duration, Model, PositiveInt
from runtime.triggers.file_source import FileSource

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_size(text: str) -> int:
    """Bytes in a size such as `64MB` (B, KB, MB, GB; 1 KB = 1024 B)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; use a number with a unit: 512KB, 64MB, 1GB")
    return int(match.group(1)) * _UNITS[(match.group(2) or "B").upper()]


class FileCsv(Model):
    """The CSV dialect of dropped files."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.", examples=[";"])
    quotechar: str = Field('"', min_length=1, max_length=1, description="Quote character.")
    header: bool = Field(
        True, description="The first row names the columns (records are objects); without it, lists of strings."
    )

    @model_validator(mode="after")
    def _dialect(self) -> Self:
        if self.delimiter == self.quotechar or {self.delimiter, self.quotechar} & {"\r", "\n"}:
            raise ValueError("delimiter and quotechar must differ and cannot be a line break")
        return self


class FixedColumn(Model):
    """One column of a fixed-width file."""

    name: str = Field(description="Field name in the record.", examples=["amount"])
    start: PositiveInt = Field(description="Position of its first character (1 = start of the line).", examples=[1])
    width: PositiveInt = Field(description="Number of characters.", examples=[10])


class FileSpec(Model):
    """Take files dropped into a file connection's folder; one run per file or per record."""

    connection: str = Field(
        description="The connection whose folder is watched (`file` or `sftp`).", examples=["bank_drop"]
    )
    pattern: str = Field("*", description="Glob of file names (`**` crosses folders).", examples=["*.csv"])
    format: Literal["csv", "json", "ndjson", "text", "fixed_width"] | None = Field(
        None,
        description="How to parse a file; by default from its extension (.csv, .json, .ndjson/.jsonl; else text).",
    )
    csv: FileCsv = Field(default_factory=FileCsv, description="CSV dialect.", examples=[{"delimiter": ";"}])
    columns: list[FixedColumn] | None = Field(
        None,
        description="fixed_width: the columns by start and width.",
        examples=[[{"name": "id", "start": 1, "width": 8}]],
    )
    widths: list[PositiveInt] | None = Field(
        None, description="fixed_width: the column widths, left to right (with `names`).", examples=[[8, 10, 12]]
    )
    names: list[str] | None = Field(None, description="fixed_width: the column names for `widths`.")
    strip: bool = Field(True, description="fixed_width: strip spaces around each value.")
    every: Duration = Field("30s", description="How often the folder is scanned.")
    per: Literal["file", "record"] = Field("file", description="One run per file, or one run per record in it.")
    stable_for: Duration = Field(
        "5s",
        description="A file is complete once its size and mtime stayed the same for this long (0s: at first "
        "sight). Files named with a temporary suffix or starting with `.` are never taken until renamed.",
    )
    temporary: list[str] = Field(
        default_factory=lambda: [".tmp", ".part", ".partial", ".filepart", ".crdownload"],
        description="Name endings of files still being written (ignored until renamed).",
    )
    batch: PositiveInt = Field(500, description="per: record — records committed per transaction.")
    on_duplicate: Literal["skip", "process"] = Field(
        "skip",
        description="A file whose content (sha256) was taken before: `skip` it (moved to done/, no runs), or "
        "`process` it again (its runs are keyed by name, content and mtime).",
    )
    done: str = Field("done", description="Folder (inside the connection's folder) for processed files.")
    failed: str = Field(
        "failed", description="Folder for files that could not be parsed, each with a `<name>.reason.txt`."
    )
    max_bytes: str = Field(
        "64MB",
        description="Largest file read whole (per: file); larger ones fail. `per: record` streams any size.",
        examples=["256MB"],
    )

    @field_validator("done", "failed")
    @classmethod
    def _inside(cls, value: str) -> str:
        parts = value.replace("\\", "/").strip("/").split("/")
        if value.startswith(("/", "\\")) or ".." in parts or not value.strip() or "\x00" in value:
            raise ValueError("must be a folder inside the connection's folder, e.g. 'done' (no '..', not absolute)")
        return value.strip("/")

    @field_validator("pattern")
    @classmethod
    def _relative_pattern(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if not value.strip() or value.startswith(("/", "\\")) or ".." in parts or "\x00" in value:
            raise ValueError("must be a glob relative to the connection's folder (no '..', not absolute)")
        return value

    @field_validator("max_bytes")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @model_validator(mode="after")
    def _layout(self) -> Self:
        fixed = self.columns is not None or self.widths is not None or self.names is not None
        if self.format == "fixed_width":
            if (self.columns is None) == (self.widths is None):
                raise ValueError("fixed_width needs `columns` (name, start, width) or `widths` with `names`")
            if self.widths is not None and (self.names is None or len(self.names) != len(self.widths)):
                raise ValueError("`names` must give one name for each of `widths`")
        elif fixed:
            raise ValueError("`columns`, `widths` and `names` are for format: fixed_width")
        if self.done == self.failed:
            raise ValueError("`done` and `failed` must be different folders")
        return self


class FileTrigger(Model):
    file: FileSpec


def _explain(spec: FileSpec) -> dict[str, Any]:
    return {
        "connection": spec.connection,
        "pattern": spec.pattern,
        "format": spec.format or "from the extension",
        "per": spec.per if spec.per == "file" else f"record (batches of {spec.batch}, resumed after a crash)",
        "complete when": f"not named *{', *'.join(spec.temporary)} or .*, "
        f"size and mtime unchanged for {spec.stable_for}",
        "duplicates": "same content skipped" if spec.on_duplicate == "skip" else "processed again",
        "afterwards": f"moved to {spec.done}/ (or {spec.failed}/ with a reason file)",
    }


TRIGGER = TriggerType(
    key="file",
    model=FileSpec,
    wrapper=FileTrigger,
    description="Files dropped into a connection's folder (local or SFTP): one run per file or per record.",
    source=FileSource,
    connection_field="connection",
    needs="folder",
    explain=_explain,
    order=60,
)
