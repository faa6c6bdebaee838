"""Errors raised by the expression engine.

    SynclineError
    ├── CompileError          an expression or template does not compile (code SL030, SL031 or SL033)
    │   └── SandboxViolation  ... because it tries to leave the sandbox (also a SandboxError)
    └── ExpressionError
        ├── SandboxError
        ├── LimitError        a value or the render went past a bound of `Limits` (reason `expression_limit`)
        └── RenderError       an expression failed while evaluating; names the source and where

Python exceptions raised while evaluating (TypeError, ZeroDivisionError, decimal.InvalidOperation,
RecursionError, ...) never leak: `Compiled.render` translates them into `RenderError`.
A `RenderError` has a stable `reason` for the step's error: `expression_limit` when a bound was
exceeded (a number too large to convert, a string or list too long, the time budget used up),
`expression` for everything else (bad data, a failing filter).
"""

from __future__ import annotations

from runtime.errors import ExpressionError, SandboxError, SynclineError

Path = tuple[str | int, ...]


class CompileError(SynclineError):
    """An expression, template or JSONPath does not compile.

    `line` is 1-based within the source string (0 if unknown), `col` is 0 when unknown,
    `path` locates the string inside a compiled YAML value (e.g. `("fields", "total")`).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "SL030",
        line: int = 0,
        col: int = 0,
        hint: str | None = None,
        path: Path = (),
        source: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.line = line
        self.col = col
        self.hint = hint
        self.path = path
        self.source = source
        super().__init__(message)

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        at = f" at {format_path(self.path)}" if self.path else ""
        hint = f" — {self.hint}" if self.hint else ""
        return f"{self.code} {self.message}{at}{where}{hint}"

    def located(self, path: Path, source: str | None = None, line: int | None = None) -> CompileError:
        """Return the same error with the location filled in where it is still unknown."""
        if not self.path:
            self.path = path
        if self.source is None:
            self.source = source
        if not self.line and line:
            self.line = line
        return self


class SandboxViolation(CompileError, SandboxError):
    """The expression tries to reach Python internals or a function that is not allow-listed."""


class LimitError(ExpressionError):
    """A value or the render went past a bound of `Limits`: refused before the costly work is done."""

    reason = "expression_limit"


class RenderError(ExpressionError):
    """An expression failed while evaluating. `source` is the expression, `path` where it sits.

    `reason` is the stable code of the failure: `expression_limit` when a bound was exceeded,
    else `expression`."""

    def __init__(
        self, message: str, *, source: str | None = None, path: Path = (), line: int = 0, reason: str = "expression"
    ) -> None:
        self.message = message
        self.source = source
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.path:
            parts.append(f"at {format_path(self.path)}")
        if self.source is not None:
            src = self.source.strip()
            if len(src) > 200:
                src = src[:197] + "..."
            parts.append(f"in {src!r}" + (f" line {self.line}" if self.line > 1 else ""))
        return " ".join(parts)


def format_path(path: Path) -> str:
    """`("lines", 0, "sku")` → `lines[0].sku`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
