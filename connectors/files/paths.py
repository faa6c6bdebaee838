"""Path confinement: every path a file operation touches must resolve inside the base directory.

A path is refused, before any file is opened, when it is empty, holds a NUL byte, is absolute, has a
`..` component, is nested more than `MAX_DEPTH` levels deep (the standard library walks folders by
recursion: `os.makedirs`, `glob`), or resolves (symbolic links followed, `os.path.realpath`) outside
the base directory.
Refusals are `ConnectorError(reason="config", error_class="fatal")` naming the path as given,
relative to the base directory; absolute host paths are never echoed.
"""

from __future__ import annotations

import os
import posixpath

from runtime.connector_api import ConnectorError

_MAX_SHOWN = 120
MAX_DEPTH = 128
"""Most components (folders and the file name) a path or list pattern may have."""


def shown(path: str) -> str:
    """The path as given, quoted and shortened, safe to put in a message."""
    text = path.replace("\x00", "\\0")
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return repr(text)


def refuse(where: str, message: str) -> ConnectorError:
    return ConnectorError(f"{where}: {message}", reason="config", error_class="fatal")


def is_inside(real: str, base: str) -> bool:
    """True if the resolved path `real` is `base` or below it (`base` resolved too)."""
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def check_relative(path: object, where: str, what: str = "path") -> str:
    """The lexical checks: a non-empty relative string without NUL bytes or `..` components."""
    if not isinstance(path, str) or not path.strip():
        raise refuse(where, f"{what} must be a non-empty string relative to the base directory")
    if "\x00" in path:
        raise refuse(where, f"{what} {shown(path)} holds a NUL byte")
    if os.path.isabs(path) or path.startswith("\\"):
        raise refuse(where, f"{what} must be relative to the base directory; absolute paths are refused")
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise refuse(where, f"{what} {shown(path)} leaves the base directory ('..' is refused)")
    depth = sum(1 for part in parts if part not in ("", "."))
    if depth > MAX_DEPTH:
        raise refuse(where, f"{what} {shown(path)} is nested {depth} levels deep; the limit is {MAX_DEPTH}")
    return path


def relative(path: str) -> str:
    """`path` normalised, with forward slashes (as shown in outputs)."""
    return posixpath.normpath(path.replace(os.sep, "/"))


def resolve(base: str, path: object, where: str) -> str:
    """The real absolute path of `path` inside `base` (itself resolved), or a refusal."""
    checked = check_relative(path, where)
    real = os.path.realpath(os.path.join(base, checked))
    if not is_inside(real, base):
        raise refuse(where, f"path {shown(checked)} resolves outside the base directory (symbolic link)")
    return real


def resolve_entry(base: str, path: object, where: str) -> str:
    """Like `resolve`, but a final symbolic link (pointing inside `base`) is kept, not followed.

    For moving and deleting a directory entry itself rather than the file a link points to.
    """
    real = resolve(base, path, where)
    assert isinstance(path, str)
    parent = os.path.realpath(os.path.dirname(os.path.join(base, path)))
    entry = os.path.join(parent, os.path.basename(os.path.normpath(path)))
    if not is_inside(parent, base) or entry == base:
        raise refuse(where, f"path {shown(path)} does not name a file inside the base directory")
    return entry if os.path.islink(entry) else real
