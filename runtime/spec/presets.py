"""A Connection that names a `preset:` gets the preset's fields under its own, before it is validated.

Problems are reported at the Connection's own lines: an unknown preset (with the known ones and a
did-you-mean), an `account:` value the preset does not know or one it needs and did not get, a
`type:` other than the preset's connector type. Fields that come from the preset keep no position of
their own, so an error inside them points at the nearest key the project wrote.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any

from runtime.errors import Diagnostic
from runtime.presets import PresetError, account_values, expand, known_presets, load_preset
from runtime.spec.yamlload import Document

CODE = "SL019"


def apply_preset(doc: Document) -> tuple[Document | None, list[Diagnostic]]:
    """`doc` (a Connection) with its preset applied; `doc` itself when it names none; None with
    diagnostics when the preset or its account values are wrong."""
    data = doc.data
    if not isinstance(data, dict) or "preset" not in data:
        if isinstance(data, dict) and "account" in data:
            return None, [_diag(doc, ("account",), "`account:` goes with `preset:`; this Connection names no preset")]
        return doc, []
    name = data["preset"]
    known = known_presets()
    if not isinstance(name, str) or name not in known:
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else None
        message = f"preset: unknown preset {name!r}; known presets: " + ", ".join(known)
        return None, [_diag(doc, ("preset",), message, hint)]
    try:
        preset = load_preset(name)
    except PresetError as exc:
        return None, [_diag(doc, ("preset",), f"preset {name!r} cannot be loaded: {exc}")]
    given = data.get("account") or {}
    if not isinstance(given, dict):
        return None, [_diag(doc, ("account",), "account: expected a mapping (name: value)")]
    values, unknown, missing = account_values(preset, given)
    problems: list[Diagnostic] = []
    allowed = ", ".join(preset.spec.account) or "none"
    for key in unknown:
        close = difflib.get_close_matches(key, list(preset.spec.account), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"preset {name!r} takes: {allowed}"
        problems.append(_diag(doc, ("account", key), f"unknown key {key!r} in account", hint, key=True))
    for key in missing:
        setting = preset.spec.account[key]
        example = f" (e.g. {setting.example!r})" if setting.example is not None else ""
        problems.append(
            _diag(
                doc,
                ("account",) if "account" in data else ("preset",),
                f"missing required field {key!r} in account: {setting.description}{example}",
                f"preset {name!r} needs account.{key}",
            )
        )
    wanted = preset.spec.connection.get("type")
    if "type" in data and data["type"] != wanted:
        problems.append(
            _diag(doc, ("type",), f"type: preset {name!r} is for connector type {wanted!r}, not {data['type']!r}")
        )
    if problems:
        return None, problems
    merged: dict[str, Any] = expand(preset, data, values)
    return replace(doc, data=merged), []


def _diag(
    doc: Document, loc: tuple[str | int, ...], message: str, hint: str | None = None, *, key: bool = False
) -> Diagnostic:
    line, col = doc.pos(loc, key=key)
    return Diagnostic.make(CODE, message, doc.path, line, col, hint)
