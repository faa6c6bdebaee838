"""Turning loaded YAML documents into typed models, with diagnostics that point into the file.

`DocumentKinds` knows every document kind (the Connection model depends on the connector registry).
`parse_document` validates one `yamlload.Document` and returns a `ParsedDocument` or diagnostics;
pydantic's errors are translated into stable codes with the line and column of the offending key or
value and, for unknown keys, a "did you mean" hint computed from the fields allowed at that place.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, Tag, TypeAdapter, ValidationError

from runtime.errors import Diagnostic
from runtime.plugins import ConnectorRegistry
from runtime.spec.common import Document as DocumentModel
from runtime.spec.connection import ConnectionBase, connection_model
from runtime.spec.flow import Flow
from runtime.spec.flowtest import FlowTest
from runtime.spec.governance import Ownership, Policy, StateMachine
from runtime.spec.mapping import Mapping
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
        for member in _union_members(union):
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
    for error in exc.errors(include_url=False):
        raw_loc = tuple(error["loc"])
        loc = tuple(part for part in raw_loc if not _is_tag(part))
        etype = error["type"]
        if (loc, etype) in seen:
            continue
        seen.add((loc, etype))
        # an error inside a union member when another member's tag was chosen is noise; skip
        code = _CODE_BY_ERROR.get(etype, "SL012")
        field = format_loc(loc)
        hint: str | None = None
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
            message = f"{field}: {_clean_msg(error['msg'])}" if field else _clean_msg(error["msg"])
            line, col = doc.pos(loc)
        diagnostics.append(Diagnostic.make(code, message, doc.path, line, col, hint))
    return diagnostics


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


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("step.") or part.startswith("trigger."))


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" — did you mean {close[0]!r}?" if close else ""


def _adapter_type(adapter: TypeAdapter[Any]) -> Any:
    return getattr(adapter, "_type", None)


# ---------------------------------------------------------------------------- allowed-key walker


def _union_members(annotation: Any) -> list[Any]:
    annotation = _strip_annotated(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_union_members(arg))
        return out
    return [annotation]


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _tag_of(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, Tag):
                return meta.tag
    return None


def allowed_keys(annotation: Any, loc: Loc) -> set[str]:
    """The keys a mapping at `loc` (a pydantic error location, tags included) may hold."""
    current = [annotation]
    for part in loc:
        nxt: list[Any] = []
        for ann in current:
            nxt.extend(_step_into(ann, part))
        current = nxt
        if not current:
            return set()
    keys: set[str] = set()
    for ann in current:
        for member in _expand_unions(ann):
            if isinstance(member, type) and issubclass(member, BaseModel):
                for name, field in member.model_fields.items():
                    keys.add(field.alias or name)
    return keys


def _expand_unions(annotation: Any) -> list[Any]:
    base = _strip_annotated(annotation)
    origin = typing.get_origin(base)
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(base):
            out.extend(_expand_unions(arg))
        return out
    return [base]


def _step_into(annotation: Any, part: Any) -> list[Any]:
    if _is_tag(part):
        base = _strip_annotated(annotation)
        for arg in typing.get_args(base) if typing.get_origin(base) in (Union, types.UnionType) else []:
            if _tag_of(arg) == part:
                return [_strip_annotated(arg)]
        return [annotation]
    out: list[Any] = []
    for member in _expand_unions(annotation):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, field in member.model_fields.items():
                if part in (name, field.alias):
                    out.append(field.annotation)
        elif origin in (list, tuple) and isinstance(part, int):
            args = typing.get_args(member)
            if args:
                out.append(args[0])
        elif origin is dict:
            args = typing.get_args(member)
            if len(args) == 2:
                out.append(args[1])
    return out
