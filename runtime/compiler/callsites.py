"""Where each flow calls which system, and what it writes there: the facts ownership checks, static
policies and `syncline explain` work from.

A `CallSite` is one operation a step names (`Reference` of kind `operation`, runtime/step_api.py): a
`call` step's (compensations and nested steps included), one side of a `reconcile`; or a poll
trigger's call, resolved to its connection's system, connector type,
operation, entity and effect. For a write, `fields` are the fields the written body holds:

- a `with` parameter `{{ steps.X.output }}` where step X maps with a Mapping that has `fields:` →
  that mapping's top-level field names;
- a `with` parameter that is an inline mapping → its keys;
- the output of any other step (a template mapping, a call) →
  unknown; so is a bare name (`{{ input }}`) and a call whose parameters give no fields at all:
  `fields` is None and the write counts for the entity as a whole. Other templated parameters
  (`{{ account.customer_no }}`, a record number in the path) are taken for keys, not body fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import StepRef, iter_steps
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import PollTrigger, StepBase
from runtime.spec.yamlload import Loc
from runtime.step_registry import step_type_of

# step/compensation: a step's own call (`direct` reference); read: an operation a step reads on its own
# terms (`direct=False`, a `reconcile` side); poll: a poll trigger's call
Origin = Literal["step", "compensation", "read", "poll"]
WRITE_EFFECTS = frozenset({"create", "update", "upsert", "delete", "command", "publish"})

_STEP_OUTPUT_RE = re.compile(r"^\s*\{\{\s*steps\.([A-Za-z_][A-Za-z0-9_]*)\.output\s*\}\}\s*$")
_BARE_NAME_RE = re.compile(r"^\s*\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}\s*$")


@dataclass(frozen=True)
class CallSite:
    """One call of one operation from one flow."""

    flow: ParsedDocument
    step_id: str | None
    step: StepBase | None
    loc: Loc  # where the `call` value sits in the flow's file
    origin: Origin
    target: str  # `connection.operation`
    connection: ParsedDocument
    system: str
    connector: str
    operation: str
    entity: str | None
    effect: str
    fields: frozenset[str] | None  # None: unknown (the write counts for the whole entity)
    body_from: str | None  # how the fields were found, for `explain`
    params: Mapping[str, Any] | None = None  # the parameters a step's own call sends (its `with`)

    @property
    def writes(self) -> bool:
        return self.effect in WRITE_EFFECTS

    @property
    def flow_name(self) -> str:
        return self.flow.name


def call_sites(ctx: CheckContext, flow_doc: ParsedDocument) -> list[CallSite]:
    """Every resolvable call of the flow, in document order (unknown operations are skipped: the
    reference checks report them)."""
    refs = list(iter_steps(flow_doc.model))
    by_id = {ref.id: ref for ref in refs}
    sites: list[CallSite] = []
    trigger = flow_doc.model.trigger
    if isinstance(trigger, PollTrigger):
        site = _site(ctx, flow_doc, None, None, trigger.poll.call, ("trigger", "poll", "call"), "poll", None, None)
        if site is not None:
            sites.append(site)
    for ref in refs:
        step = ref.step
        for reference in step_type_of(step).handler.references(step):
            if reference.kind != "operation":
                continue
            loc = (*ref.loc, *reference.at)
            if reference.direct:
                origin: Origin = "compensation" if ref.is_compensation else "step"
                params = reference.params or {}
                fields, how = written_fields(ctx, params, by_id)
                site = _site(ctx, flow_doc, ref.id, step, reference.name, loc, origin, fields, how, params)
            else:
                site = _site(ctx, flow_doc, ref.id, step, reference.name, loc, "read", None, None)
            if site is not None:
                sites.append(site)
    return sites


def all_call_sites(ctx: CheckContext) -> Iterator[CallSite]:
    for doc in ctx.named("Flow").values():
        yield from call_sites(ctx, doc)


def _site(
    ctx: CheckContext,
    flow_doc: ParsedDocument,
    step_id: str | None,
    step: StepBase | None,
    target: str,
    loc: Loc,
    origin: Origin,
    fields: frozenset[str] | None,
    how: str | None,
    params: Mapping[str, Any] | None = None,
) -> CallSite | None:
    connection_name, _, operation_name = target.partition(".")
    connection = ctx.named("Connection").get(connection_name)
    if connection is None:
        return None
    operation = connection.model.operations.get(operation_name)
    if operation is None:
        return None
    effect = getattr(operation.effect, "value", operation.effect)
    return CallSite(
        flow=flow_doc,
        step_id=step_id,
        step=step,
        loc=loc,
        origin=origin,
        target=target,
        connection=connection,
        system=connection.model.system_name(),
        connector=str(connection.model.type),
        operation=operation_name,
        entity=operation.entity,
        effect=str(effect),
        fields=fields if effect in WRITE_EFFECTS else None,
        body_from=how if effect in WRITE_EFFECTS else None,
        params=params,
    )


def written_fields(
    ctx: CheckContext, params: Mapping[str, Any], steps: dict[str, StepRef]
) -> tuple[frozenset[str] | None, str]:
    """The fields a call's parameters write, and how they were found (see the module docstring)."""
    found: set[str] = set()
    sources: list[str] = []
    for name, value in params.items():
        if isinstance(value, dict):
            found.update(str(key) for key in value)
            sources.append(f"`{name}` inline")
            continue
        if not isinstance(value, str):
            continue
        source = step_output_ref(value)
        if source is not None:
            keys = mapping_fields(ctx, steps.get(source))
            if keys is None:
                return None, f"`{name}` is the output of step {source!r}, whose fields are unknown"
            found.update(keys)
            sources.append(f"`{name}` from the mapping of step {source!r}")
        elif _names_whole_value(value):
            return None, f"`{name}` is computed ({value.strip()}), its fields are unknown"
    if not sources:
        return None, "no parameter holds a record, so the write counts for the whole entity"
    return frozenset(found), ", ".join(sources)


def step_output_ref(value: Any) -> str | None:
    """The step id X when `value` is exactly `{{ steps.X.output }}`."""
    match = _STEP_OUTPUT_RE.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _names_whole_value(text: str) -> bool:
    """Whether a parameter is plainly a whole record: a bare name such as `{{ input }}` or
    `{{ account }}` (a path such as `{{ account.customer_no }}` is taken for a scalar: a key)."""
    return _BARE_NAME_RE.match(text) is not None


def mapping_of_step(ctx: CheckContext, ref: StepRef | None) -> ParsedDocument | None:
    """The Mapping document a step maps its output with (None for templates and steps naming no mapping)."""
    if ref is None:
        return None
    from runtime.compiler.references import resolve_mapping

    for reference in step_type_of(ref.step).handler.references(ref.step):
        if reference.kind == "mapping":
            target = resolve_mapping(ctx, reference.name)
            return target if isinstance(target, ParsedDocument) else None
    return None


def mapping_fields(ctx: CheckContext, ref: StepRef | None) -> list[str] | None:
    mapping = mapping_of_step(ctx, ref)
    if mapping is None or mapping.model.fields is None:
        return None
    return [str(key) for key in mapping.model.fields]
