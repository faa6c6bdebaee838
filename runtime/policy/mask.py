"""Field masking (`mask:` in Policy rules): values shown in API responses, CLI output, dead letters,
logs and traces have the masked fields replaced by `***`.

A simple path such as `$.email` (or `$..email`) masks that field wherever it appears in a value, so a
customer's e-mail nested in an order is masked too; other paths are applied from the root of each
value. The store keeps the real data (runs must resume and replay with it); masking happens where data
leaves Syncline for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from runtime.expr import PathCompiler
from runtime.policy.match import matches_flow, rules

if TYPE_CHECKING:
    from runtime.engine.plan import Plan

MASK = "***"
_SIMPLE = re.compile(r"^\$\.{1,2}([A-Za-z_][A-Za-z0-9_\-]*)$")
_PATHS = PathCompiler()


class Masker:
    def __init__(self, paths: Iterable[str]) -> None:
        self.fields: set[str] = set()
        self.paths = []
        for path in paths:
            simple = _SIMPLE.match(path)
            if simple:
                self.fields.add(simple.group(1))
            else:
                self.paths.append(_PATHS.compile(path))

    def __bool__(self) -> bool:
        return bool(self.fields or self.paths)

    def __call__(self, value: Any) -> Any:
        if not self:
            return value
        masked = self._fields(value)
        for path in self.paths:
            for location in path.locations(masked):
                _set(masked, location)
        return masked

    def _fields(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (MASK if k in self.fields and v is not None else self._fields(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fields(v) for v in value]
        return value


def _set(document: Any, location: tuple[str | int, ...]) -> None:
    if not location:
        return
    target = document
    for part in location[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            return
    try:
        target[location[-1]] = MASK
    except (KeyError, IndexError, TypeError):
        return


def masker_for_flow(plan: Plan, flow_name: str) -> Masker:
    """Mask paths of every rule whose match applies to the flow (cached on the plan)."""
    cache: dict[str, Masker] = plan.__dict__.setdefault("_maskers", {})
    if flow_name not in cache:
        flow = plan.flows.get(flow_name)
        paths: list[str] = []
        if flow is not None:
            for _, rule in rules(plan):
                if rule.mask and matches_flow(rule.match, flow, plan):
                    paths.extend(rule.mask)
        cache[flow_name] = Masker(paths)
    return cache[flow_name]


def masker_for_project(plan: Plan) -> Masker:
    """Every mask path of the project (API responses, CLI output, logs), cached on the plan."""
    cached: Masker | None = plan.__dict__.get("_project_masker")
    if cached is None:
        cached = Masker(path for _, rule in rules(plan) for path in rule.mask)
        plan.__dict__["_project_masker"] = cached
    return cached


def mask_text(text: str, fields: Iterable[str]) -> str:
    """Mask `"field": "value"` and `'field': 'value'` pairs of the given fields inside free text."""
    names = sorted(set(fields))
    if not names:
        return text
    pattern = _text_pattern(tuple(names))
    return pattern.sub(lambda m: f'{m.group(1)}{m.group(2)}"***"', text)


def presenter_for_project(plan: Plan) -> Callable[[Any], Any]:
    """How values are shown to people (API, CLI, console): masked fields replaced by ***, as fields
    and where free text quotes them (`mask_texts`)."""
    masker = masker_for_project(plan)
    return lambda value: mask_texts(masker(value), masker.fields)


def mask_texts(value: Any, fields: Iterable[str]) -> Any:
    """`value` with `mask_text` applied to every string in it (an error message quoting a response
    body, a dead letter's reason): masked fields stay masked inside free text too."""
    names = sorted(set(fields))
    if not names:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return mask_text(item, names) if any(name in item for name in names) else item
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


_TEXT_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _text_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _TEXT_PATTERNS.get(names)
    if pattern is None:
        alternatives = "|".join(re.escape(n) for n in names)
        pattern = re.compile(
            r"""(\\?["']?(?:""" + alternatives + r""")\\?["']?)(\s*[:=]\s*)(\\?"[^"\\]*\\?"|'[^']*'|[^\s,}\]]+)"""
        )
        _TEXT_PATTERNS[names] = pattern
    return pattern
