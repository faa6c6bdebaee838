"""Secret-marked strings (`Secret`, `SecretText`), the run's taint switch, and `redact`.

A value computed from a secret stays secret-marked: `secret('NAME')` returns a `SecretText`; text
joined from secrets and plain text (`'Bearer ' ~ secret('T')`) is a `SecretText` too, and is shown
with each secret value replaced by `***`. Any other value derived from a secret (an encoding, a hash,
a case change, a slice, JSON text, a regex result, ...) is a `Secret` and is shown as `***` whole;
so is every string inside a list or object such a computation builds. `runtime/expr/taint.py` keeps
the marks through every filter and operator; `redact_value` masks them where data leaves Syncline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
TAINT_KEY = "__taint__"
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary text; they are masked where they stand


class Secret(str):
    """A secret or a value derived from one. It is a `str` (so it can be sent), but its `repr`
    never shows the value, and wherever it is shown it is `***`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class SecretText(Secret):
    """A secret value as resolved, or plain text joined with such values: shown with each secret
    value masked (`Bearer ***`), or as `***` whole when no known secret value is found in it."""

    __slots__ = ()


class Taint:
    """The render context's switch (under `TAINT_KEY`): on once `secret()` was called in the run,
    from then on every render of the run keeps secret marks through every operation. Copies of a
    context share the switch."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False

    def __repr__(self) -> str:
        return f"Taint(active={self.active})"


def _needles(secrets: Iterable[str]) -> list[str]:
    # Longest first so a secret that contains another is masked whole.
    return sorted({str(s) for s in secrets if s}, key=len, reverse=True)


def _replace(text: str, needles: list[str]) -> str:
    out = str(text)
    for needle in needles:
        if needle in out:
            out = out.replace(needle, MASK)
    return out


def mask_marked(value: str, needles: list[str]) -> str:
    """How a secret-marked string is shown: a `SecretText` with its known secret values masked
    (or `***` when none is found), any other `Secret` as `***`."""
    if type(value) is SecretText:
        shown = _replace(value, needles)
        return shown if shown != value else MASK
    return MASK


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value in `text` with `***`."""
    if isinstance(text, Secret):
        return mask_marked(text, _needles(secrets))
    return _replace(text, _needles(secrets))


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """Return a copy of a JSON value with every string redacted (keys included): secret values
    replaced by `***`, and secret-marked strings shown as `mask_marked` says."""
    return redact_with(value, _needles(secrets))


def redact_with(value: Any, needles: list[str], on_marked: Callable[[str], None] | None = None) -> Any:
    """`redact_value` with the needles already sorted longest first; `on_marked` is called with
    each secret-marked string met."""

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            if type(v) is not str and isinstance(v, Secret):
                if on_marked is not None:
                    on_marked(v)
                return mask_marked(v, needles)
            return _replace(v, needles)
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)


def marked_strings(value: Any, *, limit: int = 10_000) -> list[str]:
    """The secret-marked strings inside a JSON value (keys included), at most `limit` of them."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(v, str):
            if type(v) is not str and isinstance(v, Secret):
                found.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(value)
    return found
