"""Turning loaded YAML documents into typed models, with diagnostics that point into the file.

`DocumentKinds` knows every document kind (the Connection model depends on the connector registry).
`parse_document` validates one `yamlload.Document` and returns a `ParsedDocument` or diagnostics;
pydantic's errors are translated into stable codes with the line and column of the offending key or
value and, for unknown keys, a "did you mean" hint computed from the fields allowed at that place.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from runtime.errors import Diagnostic
from runtime.plugins import ConnectorRegistry
from runtime.spec.annotations import (
    allowed_keys,
    describe_members,
    field_description,
    is_tag,
    union_label_at,
    union_members,
)
from runtime.spec.common import Document as DocumentModel
from runtime.spec.connection import ConnectionBase, connection_model
from runtime.spec.flow import Flow
from runtime.spec.flowtest import FlowTest
from runtime.spec.governance import Ownership, Policy, StateMachine
from runtime.spec.mapping import Mapping
from runtime.spec.presets import apply_preset
from runtime.spec.project import Project
from runtime.spec.yamlload import Document, Loc

STATIC_KINDS: dict[str, type[DocumentModel]] = {
    "Project": Project,
    "Flow": Flow,
    "Mapping": Mapping,
    "Ownership": Ownership,
    "Policy": Policy,
    "StateMachine": StateMachine,
    "FlowTest": FlowTest,
}
KIND_NAMES = ("Project", "Connection", "Ownership", "Policy", "StateMachine", "Flow", "Mapping", "FlowTest")

_CODE_BY_ERROR = {
    "extra_forbidden": "SL010",
    "missing": "SL011",
    "step_kind": "SL014",
    "trigger_kind": "SL018",
    "duration": "SL016",
    "yaml11_bool": "SL017",
}


@dataclass
class ParsedDocument:
    """A validated document and the YAML it came from (for positions)."""

    kind: str
    name: str
    model: Any
    source: Document

    @property
    def path(self) -> str:
        return self.source.path

    def pos(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        return self.source.pos(loc, key=key)

    def diag(self, code: str, message: str, loc: Loc = (), *, key: bool = False, hint: str | None = None) -> Diagnostic:
        line, col = self.pos(loc, key=key)
        return Diagnostic.make(code, message, self.path, line, col, hint)


class DocumentKinds:
    """The models of every document kind for one connector registry."""

    def __init__(self, registry: ConnectorRegistry) -> None:
        self.registry = registry
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        for kind, model in STATIC_KINDS.items():
            self._adapters[kind] = TypeAdapter(model)
        self._connection_members: dict[str, type[BaseModel]] = {}
        union = connection_model(registry)
        for member in union_members(union):
            if isinstance(member, type) and issubclass(member, ConnectionBase):
                type_field = member.model_fields.get("type")
                if type_field is not None:
                    (literal,) = typing.get_args(type_field.annotation)
                    self._connection_members[literal] = member
                    self._adapters[f"Connection:{literal}"] = TypeAdapter(member)
        self.connection_union = union

    def model_for(self, kind: str, data: dict[str, Any]) -> tuple[TypeAdapter[Any] | None, str | None]:
        """The adapter validating a document of `kind`, or an error message."""
        if kind == "Connection":
            ctype = data.get("type")
            if not isinstance(ctype, str):
                return None, "a Connection needs `type` (one of: " + ", ".join(self.registry.names()) + ")"
            adapter = self._adapters.get(f"Connection:{ctype}")
            if adapter is None:
                return None, f"unknown connector type {ctype!r}" + _suggest(ctype, self.registry.names())
            return adapter, None
        adapter = self._adapters.get(kind)
        if adapter is None:
            return None, f"unknown kind {kind!r}" + _suggest(kind, KIND_NAMES)
        return adapter, None

    def connection_model_for(self, connector_type: str) -> type[BaseModel] | None:
        return self._connection_members.get(connector_type)


def parse_document(doc: Document, kinds: DocumentKinds) -> tuple[ParsedDocument | None, list[Diagnostic]]:
    """Validate one YAML document against its kind's model."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [
            Diagnostic.make(
                "SL008", "a document must be a mapping with `kind:` and `name:`", doc.path, doc.line, doc.col
            )
        ]
    kind = data.get("kind")
    if not isinstance(kind, str):
        line, col = doc.pos(())
        return None, [
            Diagnostic.make(
                "SL008",
                "document has no `kind:` (one of: " + ", ".join(KIND_NAMES) + ")",
                doc.path,
                line,
                col,
            )
        ]
    if kind == "Connection":
        expanded, problems = apply_preset(doc)
        if expanded is None:
            return None, problems
        doc, data = expanded, expanded.data
    adapter, problem = kinds.model_for(kind, data)
    if adapter is None:
        assert problem is not None
        code = "SL009" if kind != "Connection" else "SL012"
        loc: Loc = ("kind",) if kind != "Connection" else ("type",)
        line, col = doc.pos(loc)
        return None, [Diagnostic.make(code, problem, doc.path, line, col)]
    try:
        model = adapter.validate_python(data)
    except ValidationError as exc:
        return None, translate_errors(exc, doc, adapter)
    return ParsedDocument(kind, model.name, model, doc), []


def translate_errors(exc: ValidationError, doc: Document, adapter: TypeAdapter[Any]) -> list[Diagnostic]:
    """pydantic errors → diagnostics with codes, positions and hints (one per distinct place)."""
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[Loc, str]] = set()
    root_type = _adapter_type(adapter)
    for error in user_errors(exc.errors(include_url=False), root_type, doc.data):
        raw_loc = tuple(error["loc"])
        loc = tuple(part for part in raw_loc if not is_tag(part))
        etype = error["type"]
        if (loc, etype) in seen:
            continue
        seen.add((loc, etype))
        code = _CODE_BY_ERROR.get(etype, "SL012")
        field = format_loc(loc)
        hint: str | None = error.get("hint")
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            allowed = allowed_keys(root_type, raw_loc[:-1])
            message = f"unknown key {key!r}" + (f" in {format_loc(loc[:-1])}" if len(loc) > 1 else "")
            if allowed and isinstance(key, str):
                close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(sorted(allowed))
            line, col = doc.pos(loc, key=True)
        elif etype == "missing":
            message = f"missing required field {loc[-1]!r}" + (f" in {format_loc(loc[:-1])}" if len(loc) > 1 else "")
            line, col = doc.pos(loc[:-1])
        elif etype in ("step_kind", "trigger_kind"):
            message = _kind_problem(etype, _data_at(doc.data, loc), field)
            line, col = doc.pos(loc, key=True)
        else:
            text = error["words"] if "words" in error else _clean_msg(error["msg"])
            message = f"{field}: {text}" if field else text
            line, col = doc.pos(loc)
        diagnostics.append(Diagnostic.make(code, message, doc.path, line, col, hint))
    return diagnostics


def user_errors(errors: list[Any], root_type: Any, data: Any) -> list[dict[str, Any]]:
    """pydantic's errors restated where they are about a union or a fixed set of values (`on_error`,
    `retry.on`, auth and pagination types): one error per place, saying what is allowed, in the
    words of the document (`fail, continue, dead_letter, or {goto: …}`), never pydantic's member
    labels (`on_error.GotoAction: Input should be a valid dictionary or instance of GotoAction`).
    Errors inside the one member the value was meant for (a mapping given for `{goto: …}`, the
    member a `type:` chose) are kept, at their place without the label."""
    out: list[dict[str, Any]] = []
    groups: dict[Loc, tuple[list[Any], list[tuple[str, dict[str, Any]]]]] = {}
    for error in errors:
        raw_loc = tuple(error["loc"])
        split = union_label_at(root_type, raw_loc)
        if split is None:
            out.append(_reworded(dict(error), data))
            continue
        index, members = split
        prefix = raw_loc[:index]
        label = str(raw_loc[index])
        unlabelled = {**error, "loc": prefix + raw_loc[index + 1 :]}
        if prefix not in groups:
            groups[prefix] = (members, [])
            out.append({"group": prefix})  # keeps the group's place among the errors
        groups[prefix][1].append((label, unlabelled))
    result: list[dict[str, Any]] = []
    for item in out:
        if "group" not in item:
            result.append(item)
            continue
        prefix = item["group"]
        members, labelled = groups[prefix]
        result.extend(_union_group(prefix, members, labelled, root_type, data))
    return result


def _union_group(
    prefix: Loc, members: list[Any], labelled: list[tuple[str, dict[str, Any]]], root_type: Any, data: Any
) -> list[dict[str, Any]]:
    labels = list(dict.fromkeys(label for label, _ in labelled))
    value = _data_at(data, tuple(p for p in prefix if not is_tag(p)))
    chosen: str | None = labels[0] if len(labels) == 1 else None
    if chosen is None and isinstance(value, dict):
        models = {m.__name__ for m in members if isinstance(m, type) and issubclass(m, BaseModel)}
        meant = [label for label in labels if label in models]
        chosen = meant[0] if len(meant) == 1 else None
    if chosen is not None:
        return [_reworded(error, data) for label, error in labelled if label == chosen]
    allowed = describe_members(members)
    shown = _show_value(value)
    words = f"{shown} is not allowed here; use {allowed}"
    literals = [str(v) for m in members for v in typing.get_args(m) if typing.get_origin(m) is typing.Literal]
    hint = _closest(value, literals) or field_description(root_type, prefix)
    return [{"loc": prefix, "type": "union", "msg": words, "words": words, "hint": hint}]


def _reworded(error: dict[str, Any], data: Any) -> dict[str, Any]:
    """A fixed set of values (a `Literal`, a discriminator's tags) said as a list, with did-you-mean."""
    ctx = error.get("ctx") or {}
    if error["type"] == "literal_error":
        options = _quoted_options(str(ctx.get("expected", "")))
        value = error.get("input")
        error["words"] = f"{_show_value(value)} is not one of: " + ", ".join(options)
        error["hint"] = _closest(value, options)
    elif error["type"] == "union_tag_invalid":
        options = _quoted_options(str(ctx.get("expected_tags", "")))
        key = str(ctx.get("discriminator", "")).strip("'")
        tag = ctx.get("tag")
        error["loc"] = (*tuple(error["loc"]), key)
        error["words"] = f"{_show_value(tag)} is not one of: " + ", ".join(options)
        error["hint"] = _closest(tag, options)
    elif error["type"] in _EXPECTED:
        error["words"] = f"expected {_EXPECTED[error['type']]}, got {_show_value(error.get('input'))}"
    return error


_EXPECTED = {
    "string_type": "text",
    "list_type": "a list (e.g. [a, b])",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _closest(value: Any, options: list[str]) -> str | None:
    """`did you mean …?` for a value close to (or the start of) one of `options`."""
    if not isinstance(value, str):
        return None
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    if not close and value:
        close = [o for o in options if o.startswith(value)][:1]
    return f"did you mean {close[0]!r}?" if close else None


def _quoted_options(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"'([^']*)'", text)]


def _show_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return repr(value) if isinstance(value, str) else str(value)


def _data_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _kind_problem(etype: str, value: Any, field: str) -> str:
    from runtime.spec.flow import STEP_KINDS, TRIGGER_KINDS

    what, kinds = ("step", STEP_KINDS) if etype == "step_kind" else ("trigger", TRIGGER_KINDS)
    where = f"{field}: " if field else ""
    if not isinstance(value, dict):
        return f"{where}a {what} must be a mapping with one of: " + ", ".join(kinds)
    present = [k for k in kinds if k in value]
    if len(present) > 1:
        return f"{where}a {what} has exactly one kind, this one has " + " and ".join(repr(k) for k in present)
    unknown = [k for k in value if isinstance(k, str)] if what == "trigger" else []
    if len(unknown) == 1:  # one key that is not an installed kind: say so, with what is installed
        return (
            f"{where}no installed package provides the trigger kind {unknown[0]!r} (a flow using it would never "
            "be started); the installed kinds are: " + ", ".join(kinds)
        )
    return f"{where}a {what} needs one of: " + ", ".join(kinds)


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_msg(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" — did you mean {close[0]!r}?" if close else ""


def _adapter_type(adapter: TypeAdapter[Any]) -> Any:
    return getattr(adapter, "_type", None)
