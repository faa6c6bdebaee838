"""Compiling every expression and template of the project, and checking what they refer to.

Every string holding `{{ }}` or `{% %}` in flows, mappings, connections and policies is compiled
(SL030 syntax, SL031 JSONPath, SL033 unknown filter/test/function). Condition fields (`if`, `when`,
`filter`, `match`) may be written with or without braces. References to `steps.<id>` must name a
step that runs before (or, in a compensation, the step being compensated) (SL028).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import StepRef, iter_steps
from runtime.expr import CompileError, PathCompiler
from runtime.spec.documents import ParsedDocument
from runtime.spec.yamlload import Loc
from runtime.step_registry import default_step_registry, step_type_of

# keys holding a condition: `if` (every step), `when` (switch cases, policy rules), `match` (events), and
# those step kinds declare (`condition_keys` in runtime/step_api.py: `filter`)
CONDITION_KEYS = frozenset({"if", "when", "match"}) | frozenset(
    key for step_type in default_step_registry() for key in step_type.handler.condition_keys
)
SKIPPED_KEYS = frozenset({"name", "description", "labels", "kind", "tests"})


def is_templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def templated_strings(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, bool]]:
    """(location, text, is_condition) for every templated string and every condition in `data`
    (the document-level `name`, `description`, `labels`, `kind` and `tests` are not expressions)."""
    stack: list[tuple[Loc, Any]] = [(loc, data)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                if not here and key in SKIPPED_KEYS and isinstance(key, str):
                    continue  # document-level prose (a mapping field may well be called `name`)
                if key in CONDITION_KEYS and isinstance(item, str):
                    yield (*here, key), item, True
                    continue
                stack.append(((*here, key), item))
        elif isinstance(value, list):
            for index in range(len(value) - 1, -1, -1):
                stack.append(((*here, index), value[index]))
        elif isinstance(value, str) and is_templated(value):
            yield here, value, False


def compile_at(ctx: CheckContext, doc: ParsedDocument, loc: Loc, text: str, condition: bool) -> Any:
    """Compile one string; report a diagnostic and return None when it does not compile."""
    try:
        if condition:
            return ctx.engine.compile_expression(text)
        return ctx.engine.compile(text)
    except CompileError as exc:
        offset = max(exc.line - 1, 0) if exc.line else 0
        if offset and _is_block(doc, loc):
            offset += 1  # a block scalar's text starts on the line after its key
        ctx.report(doc, exc.code, f"{_field(loc)}: {exc.message}", loc, hint=exc.hint, line_offset=offset)
        return None


def _is_block(doc: ParsedDocument, loc: Loc) -> bool:
    return doc.pos(loc)[0] != doc.pos(loc, key=True)[0]


def _field(loc: Loc) -> str:
    from runtime.spec.documents import format_loc

    return format_loc(loc) or "value"


def check_document_expressions(
    ctx: CheckContext, doc: ParsedDocument, data: Any, base: Loc = ()
) -> list[tuple[Loc, Any]]:
    compiled: list[tuple[Loc, Any]] = []
    for loc, text, condition in templated_strings(data, base):
        result = compile_at(ctx, doc, loc, text, condition)
        if result is not None:
            compiled.append((loc, result))
    return compiled


def check_flow_expressions(ctx: CheckContext, doc: ParsedDocument) -> None:
    refs = list(iter_steps(doc.model))
    by_loc = {ref.loc: ref for ref in refs}
    ids = {ref.id: ref for ref in refs}
    for loc, compiled in check_document_expressions(ctx, doc, doc.source.data):
        user = _enclosing_step(by_loc, loc)
        for chain in getattr(compiled, "references", ()):
            if len(chain) < 2 or chain[0] != "steps" or not isinstance(chain[1], str):
                continue
            target = ids.get(chain[1])
            if target is None:
                from runtime.compiler.references import did_you_mean

                ctx.report(
                    doc,
                    "SL028",
                    f"{_field(loc)}: `steps.{chain[1]}` names no step of this flow",
                    loc,
                    hint=did_you_mean(chain[1], ids),
                )
            elif user is not None and not _runs_before(target, user):
                ctx.report(
                    doc,
                    "SL028",
                    f"{_field(loc)}: step {chain[1]!r} has not run yet when step {user.id!r} runs",
                    loc,
                )


def _enclosing_step(by_loc: dict[Loc, StepRef], loc: Loc) -> StepRef | None:
    probe = loc
    while probe:
        if probe in by_loc:
            return by_loc[probe]
        probe = probe[:-1]
    return None


def _runs_before(target: StepRef, user: StepRef) -> bool:
    # a compensation may refer to the step it undoes
    return target.order < user.order or (user.is_compensation and user.loc[:-1] == target.loc)


_PATHS = PathCompiler()


def check_path(ctx: CheckContext, doc: ParsedDocument, loc: Loc, path: str) -> None:
    """A field documented as JSONPath must be RFC 9535 JSONPath (SL031)."""
    try:
        _PATHS.compile(path)
    except CompileError as exc:
        ctx.report(doc, exc.code, f"{_field(loc)}: {exc.message}", loc, hint=exc.hint)


def check_jsonpath_fields(ctx: CheckContext) -> None:
    from runtime.spec.flow import PollTrigger

    for doc in ctx.named("Flow").values():
        trigger = doc.model.trigger
        if isinstance(trigger, PollTrigger):
            check_path(ctx, doc, ("trigger", "poll", "items"), trigger.poll.items)
        for ref in iter_steps(doc.model):
            for at, path in step_type_of(ref.step).handler.jsonpaths(ref.step):
                check_path(ctx, doc, (*ref.loc, *at), path)
    for doc in ctx.named("Policy").values():
        for index, rule in enumerate(doc.model.rules):
            for mask_index, path in enumerate(rule.mask):
                check_path(ctx, doc, ("rules", index, "mask", mask_index), path)
