"""Reading a data file a project names (a FlowTest's `input: {file: ...}`): JSON, or YAML for
`.yaml`/`.yml`, inside the project. Every problem is an `InputFileError` saying what is wrong, so
`validate` can report it (SL036) and `syncline test` never shows a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.errors import SynclineError
from runtime.expr import loads
from runtime.spec.yamlload import YamlLoadError, load_file

YAML_SUFFIXES = (".yaml", ".yml")


class InputFileError(SynclineError):
    """The file cannot be used; `missing` when it does not exist."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_input_file(root: Path, relative: str) -> Any:
    """The data in `relative` (resolved against the project `root`)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InputFileError(f"input file {relative!r} is outside the project")
    if not path.is_file():
        raise InputFileError(f"input file {relative!r} not found", missing=True)
    if path.suffix in YAML_SUFFIXES:
        try:
            docs = load_file(path)
        except YamlLoadError as exc:
            raise InputFileError(
                f"input file {relative!r} is not valid YAML: " + "; ".join(d.message for d in exc.diagnostics)
            ) from None
        return docs[0].data if docs else None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"input file {relative!r} cannot be read: {exc.strerror or exc}") from None
    try:
        return loads(raw)
    except ValueError as exc:
        raise InputFileError(f"input file {relative!r} is not valid JSON: {exc}") from None
