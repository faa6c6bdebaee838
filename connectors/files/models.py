"""The file connector's models: a Connection's `config:` and one entry under its `operations:`."""

from __future__ import annotations

import codecs
import enum
import posixpath
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from runtime.connector_api import Effect, OperationSpec


class FileFormat(enum.StrEnum):
    """How a file's content maps to data."""

    csv = "csv"  # list of objects with string values (list of lists without a header)
    json = "json"  # one JSON value; numbers with a fraction as exact decimals
    ndjson = "ndjson"  # one JSON value per line
    text = "text"  # one string


class FileAction(enum.StrEnum):
    """What an operation does with the file at `path`."""

    read = "read"
    write = "write"
    append = "append"
    list = "list"
    move_done = "move_done"
    move_failed = "move_failed"
    delete = "delete"


_EXTENSIONS = {".csv": FileFormat.csv, ".json": FileFormat.json, ".ndjson": FileFormat.ndjson}
_EXTENSIONS[".jsonl"] = FileFormat.ndjson
_DEFAULT_EFFECT = {
    FileAction.read: Effect.read,
    FileAction.list: Effect.read,
    FileAction.write: Effect.upsert,
    FileAction.append: Effect.create,
    FileAction.move_done: Effect.command,
    FileAction.move_failed: Effect.command,
    FileAction.delete: Effect.delete,
}


def format_for(path: str) -> FileFormat:
    """The format a file's extension implies: .csv, .json, .ndjson/.jsonl; anything else is text."""
    return _EXTENSIONS.get(posixpath.splitext(path)[1].lower(), FileFormat.text)


def _inside_path(value: str, what: str) -> str:
    """A folder below `base_dir`: relative, no `..`, no NUL."""
    if "\x00" in value:
        raise ValueError(f"{what} holds a NUL byte")
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "\\")) or ".." in parts or not value.strip() or value.strip() in (".", "./"):
        raise ValueError(f"{what} must be a folder inside base_dir, e.g. 'done' (no '..', not absolute)")
    return value


class CsvOptions(BaseModel):
    """How CSV files are read and written."""

    model_config = ConfigDict(extra="forbid")

    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.", examples=[";"])
    quotechar: str = Field('"', min_length=1, max_length=1, description="Quote character.", examples=['"'])
    header: bool = Field(
        True,
        description="The first row names the columns: rows read as objects and written with a header line. "
        "Without it rows are lists of strings.",
        examples=[True],
    )

    @model_validator(mode="after")
    def _check_dialect(self) -> Self:
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")
        if {self.delimiter, self.quotechar} & {"\r", "\n"}:
            raise ValueError("delimiter and quotechar cannot be a line break")
        return self


class FileConfig(BaseModel):
    """`config:` of a Connection of type `file`."""

    model_config = ConfigDict(extra="forbid")

    base_dir: str = Field(
        ...,
        min_length=1,
        description="The folder every path is confined to; relative to the project folder or absolute. "
        "Paths that leave it (`..`, absolute paths, symbolic links pointing out) are refused.",
        examples=["data/finance_drop", "/srv/exchange/erp"],
    )
    done_dir: str = Field(
        "done", description="Folder (inside base_dir) that `move_done` moves files to.", examples=["done"]
    )
    failed_dir: str = Field(
        "failed",
        description="Folder (inside base_dir) that `move_failed` moves files to.",
        examples=["failed"],
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of the files. With utf-8 a leading byte order mark is ignored on read.",
        examples=["utf-8", "latin-1"],
    )
    csv: CsvOptions = Field(default_factory=CsvOptions, description="CSV dialect.", examples=[{"delimiter": ";"}])
    max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description="Largest file `read` accepts, in bytes.",
        examples=[10_000_000],
    )

    @field_validator("base_dir")
    @classmethod
    def _check_base_dir(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("base_dir holds a NUL byte")
        return value

    @field_validator("done_dir", "failed_dir")
    @classmethod
    def _check_inside(cls, value: str, info: ValidationInfo) -> str:
        return _inside_path(value, str(info.field_name))

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class FileOperation(OperationSpec):
    """One entry under `operations:` of a Connection of type `file`."""

    action: FileAction = Field(
        FileAction.read,
        description="`read`, `write` (atomic replace), `append` (ndjson, csv, text), `list` (names matching "
        "`pattern`), `move_done`, `move_failed` (into the done/failed folder) or `delete`. "
        "When `effect` is not given it follows the action (write: upsert, append: create, move: command).",
        examples=["read"],
    )
    path: str | None = Field(
        None,
        description="File path relative to base_dir; may be templated. Needed by every action but `list`.",
        examples=["out/{{ params.day }}.json", "{{ input.file }}"],
    )
    format: FileFormat | None = Field(
        None,
        description="`csv`, `json`, `ndjson` or `text`; by default from the extension (.csv, .json, "
        ".ndjson/.jsonl, anything else text).",
        examples=["ndjson"],
    )
    pattern: str = Field(
        "*",
        description="For `list`: a glob relative to base_dir (`**` crosses folders); hidden files and the "
        "done/failed folders are left out unless the pattern names them.",
        examples=["*.csv", "inbox/**/*.json"],
    )
    data: Any = Field(
        None,
        description="For `write` and `append`: the value to write, usually a template. "
        "Defaults to the step's `with: {data: ...}`.",
        examples=["{{ steps.map.output }}"],
    )
    csv: CsvOptions | None = Field(None, description="Overrides the connection's CSV dialect for this operation.")
    escape_formulas: bool = Field(
        True,
        description="For `write` and `append` of CSV: a text value (or column name) that starts with `=`, `+`, "
        "`-`, `@`, a tab or a CR gets a leading `'`, so a spreadsheet shows it instead of running it as a "
        "formula (OWASP CSV injection). Numbers are never changed: typed numbers, negative decimals "
        "included, and texts that are a plain number (`-5`, `+3.25`, `-1e5`). `false` writes every value "
        "as it is.",
        examples=[True, False],
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.action is not FileAction.list and self.path is None:
            raise ValueError(f"action {self.action.value} needs a `path`")
        if "effect" not in self.model_fields_set:
            self.effect = _DEFAULT_EFFECT[self.action]
        return self
