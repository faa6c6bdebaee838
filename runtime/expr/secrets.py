"""`Secret`: a string that came from a secret store, so the runtime can mask it; and `redact`.

Expressions return `secret('NAME')` as a `Secret`; string filters and text rendering keep the mark
when a secret flows into a new string (`'Bearer ' ~ secret('T')` is a `Secret` too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"


class Secret(str):
    """A secret value. It is a `str` (so it can be sent), but its `repr` never shows the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


def _needles(secrets: Iterable[str]) -> list[str]:
    # Longest first so a secret that contains another is masked whole.
    return sorted({str(s) for s in secrets if s}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value in `text` with `***`."""
    out = str(text)
    for needle in _needles(secrets):
        if needle in out:
            out = out.replace(needle, MASK)
    return out


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """Return a copy of a JSON value with every string redacted (keys included)."""
    needles = _needles(secrets)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            out = str(v)
            for needle in needles:
                if needle in out:
                    out = out.replace(needle, MASK)
            return out
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)
