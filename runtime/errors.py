"""Diagnostics and the error tree.

`Diagnostic` is one finding about a project file (`path:line:col: error CODE message`).
Exceptions form a small tree; each class says what to do about it:

    SynclineError
    ├── ProjectError          the project files are wrong: fix them (carries diagnostics)
    ├── ExpressionError       an expression failed while evaluating (bad data, bounds exceeded)
    │   └── SandboxError      an expression tried to leave the sandbox
    └── UsageError            the command line is wrong (exit code 2)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.codes import CODES, Severity


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding about a file. `line` and `col` are 1-based; 0 means unknown."""

    path: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = field(default="error", compare=False)
    hint: str | None = field(default=None, compare=False)

    @classmethod
    def make(
        cls,
        code: str,
        message: str,
        path: str | Path = "",
        line: int = 0,
        col: int = 0,
        hint: str | None = None,
    ) -> Diagnostic:
        severity = CODES[code].severity if code in CODES else "error"
        return cls(str(path), line, col, code, message, severity, hint)

    def text(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}: {self.severity} {self.code} {self.message}{hint}"

    def github(self) -> str:
        level = "error" if self.severity == "error" else "warning"
        msg = (self.message + (f" — {self.hint}" if self.hint else "")).replace("%", "%25").replace("\n", "%0A")
        return f"::{level} file={self.path},line={self.line},col={self.col},title={self.code}::{msg}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def diagnostics_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in diags], indent=2)


class SynclineError(Exception):
    """Base of every error Syncline raises on purpose."""


class ProjectError(SynclineError):
    """The project does not load or check; `diagnostics` says where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.text() for d in diagnostics))


class ExpressionError(SynclineError):
    """An expression failed while evaluating: bad data, a bound exceeded, or a failing filter."""


class SandboxError(ExpressionError):
    """An expression tried to reach something outside the sandbox."""


class UsageError(SynclineError):
    """The command line is wrong."""
