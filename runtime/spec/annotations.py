"""Walking the type annotations of the document models along a pydantic error location: which keys
a mapping at a place may hold (for "did you mean"), which union a place holds, and which location
parts are pydantic's labels for union members rather than keys of the document."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, Tag

from runtime.spec.yamlload import Loc


def is_tag(part: Any) -> bool:
    """A location part naming a member of the step or trigger union (`step.call`, `trigger.webhook`)."""
    return isinstance(part, str) and (part.startswith("step.") or part.startswith("trigger."))


def union_members(annotation: Any) -> list[Any]:
    annotation = _strip_annotated(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(union_members(arg))
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
    if is_tag(part):
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


def _members(annotations: list[Any]) -> list[Any]:
    out: list[Any] = []
    for annotation in annotations:
        out.extend(m for m in _expand_unions(annotation) if m is not type(None) and m not in out)
    return out


def _is_key_of(members: list[Any], part: Any) -> bool:
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            if any(part in (name, field.alias) for name, field in member.model_fields.items()):
                return True
        elif typing.get_origin(member) in (dict, list, tuple) or member is Any:
            return True
    return False


def union_label_at(annotation: Any, loc: Loc) -> tuple[int, list[Any]] | None:
    """Where pydantic's location `loc` names a member of a union instead of a key (`GotoAction`,
    `literal['fail','continue']`, `int`, a discriminator's tag): that part's index and the union's
    members; None when `loc` holds only keys and indexes."""
    current = [annotation]
    for index, part in enumerate(loc):
        if not is_tag(part):
            members = _members(current)
            if len(members) > 1 and isinstance(part, str) and not _is_key_of(members, part):
                return index, members
        nxt: list[Any] = []
        for ann in current:
            nxt.extend(_step_into(ann, part))
        current = nxt
        if not current:
            return None
    return None


def field_description(annotation: Any, loc: Loc) -> str | None:
    """The description of the last model field on the way along `loc`."""
    current = [annotation]
    found: str | None = None
    for part in loc:
        for member in _members(current):
            if isinstance(member, type) and issubclass(member, BaseModel):
                for name, field in member.model_fields.items():
                    if part in (name, field.alias) and field.description:
                        found = field.description
        nxt: list[Any] = []
        for ann in current:
            nxt.extend(_step_into(ann, part))
        current = nxt
    return found


_WORDS: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
}


def _type_words(member: Any) -> str:
    base = _strip_annotated(member)
    origin = typing.get_origin(base)
    if origin is typing.Literal:
        return ", ".join(str(v) for v in typing.get_args(base))
    if isinstance(base, type) and issubclass(base, BaseModel):
        required = [f.alias or n for n, f in base.model_fields.items() if f.is_required()]
        keys = required or [f.alias or n for n, f in base.model_fields.items()][:2]
        return "{" + ", ".join(f"{k}: …" for k in keys) + "}"
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    for kind, words in _WORDS.items():
        if isinstance(base, type) and issubclass(base, kind):
            return words
    return getattr(base, "__name__", str(base))


def describe_members(members: list[Any]) -> str:
    """A union's members as a user reads them: `fail, continue, dead_letter, or {goto: …}`."""
    words = [_type_words(m) for m in members]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + ", or " + words[-1]
