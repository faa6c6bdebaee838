"""Checks that names used in one document resolve to another: connections and operations in `call`,
mappings in `map`, schema files, state machines and states, `goto` targets, sub-flows, and the
flows and operations FlowTests name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import iter_steps
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import Flow, GotoAction, StepBase
from runtime.spec.flowtest import InputFile
from runtime.spec.yamlload import Loc
from runtime.step_api import Reference
from runtime.step_registry import step_type_of
from runtime.trigger_registry import trigger_spec, trigger_type_of

TEMPLATE_SUFFIX = ".j2"
MAPPING_SUFFIXES = (".yaml", ".yml")


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def index_documents(ctx: CheckContext) -> None:
    """Group documents by kind and name; report duplicate names (SL013)."""
    for doc in ctx.docs.documents:
        group = ctx.by_kind.setdefault(doc.kind, {})
        if doc.name in group:
            first = group[doc.name]
            ctx.report(
                doc,
                "SL013",
                f"{doc.kind} {doc.name!r} is already defined at {first.path}:{first.pos(())[0]}",
                ("name",),
            )
            continue
        group[doc.name] = doc


def check_call(ctx: CheckContext, doc: ParsedDocument, target: str, loc: Loc) -> None:
    """`connection.operation` must name a declared operation (SL021, SL020)."""
    connection_name, dot, operation = target.partition(".")
    connections = ctx.named("Connection")
    if not dot or not operation:
        ctx.report(doc, "SL020", f"{target!r} is not `connection.operation`", loc)
        return
    connection = connections.get(connection_name)
    if connection is None:
        if ctx.broken("Connection", connection_name):
            return  # already reported where it is declared
        ctx.report(
            doc,
            "SL021",
            f"unknown connection {connection_name!r} in {target!r}",
            loc,
            hint=did_you_mean(connection_name, connections),
        )
        return
    operations = connection.model.operations
    if operation not in operations:
        ctx.report(
            doc,
            "SL020",
            f"connection {connection_name!r} has no operation {operation!r}",
            loc,
            hint=did_you_mean(operation, operations),
        )


def check_connection_ref(ctx: CheckContext, doc: ParsedDocument, name: str, loc: Loc) -> None:
    connections = ctx.named("Connection")
    if name not in connections and not ctx.broken("Connection", name):
        ctx.report(doc, "SL021", f"unknown connection {name!r}", loc, hint=did_you_mean(name, connections))


SKIPPED_FOLDERS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__"})
MAX_FILES_SCANNED = 5000


def project_file_names(root: Path, suffix: str) -> list[str]:
    """Relative paths of the project's files ending in `suffix` (hidden and tool folders skipped)."""
    found: list[str] = []
    for path in root.rglob("*" + suffix):
        relative = path.relative_to(root)
        if any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts[:-1]):
            continue
        if path.is_file():
            found.append(relative.as_posix())
        if len(found) >= MAX_FILES_SCANNED:
            break
    return found


def file_did_you_mean(ctx: CheckContext, relative: str) -> str | None:
    """A hint naming the project file `relative` probably meant: a close path, or the same file name
    in another folder."""
    options = project_file_names(ctx.root, Path(relative).suffix)
    close = did_you_mean(relative, options)
    if close is not None:
        return close
    same_name = sorted(o for o in options if Path(o).name == Path(relative).name)
    if same_name:
        return f"did you mean {same_name[0]!r}?"
    by_name = difflib.get_close_matches(Path(relative).name, sorted({Path(o).name for o in options}), n=1)
    if by_name:
        return f"did you mean {sorted(o for o in options if Path(o).name == by_name[0])[0]!r}?"
    return None


def check_schema_ref(ctx: CheckContext, doc: ParsedDocument, relative: str, loc: Loc) -> None:
    entry = ctx.load_schema(relative)
    if entry.problem is None:
        return
    if not entry.path.is_file():
        ctx.report(doc, "SL023", entry.problem, loc, hint=file_did_you_mean(ctx, relative))
    else:
        ctx.report(doc, "SL024", entry.problem, loc)


def resolve_mapping(ctx: CheckContext, reference: str) -> ParsedDocument | Path | None:
    """A `map:` reference: a Mapping by name, a mapping YAML file, or a template file."""
    if reference.endswith(TEMPLATE_SUFFIX):
        return ctx.resolve(reference)
    if reference.endswith(MAPPING_SUFFIXES):
        target = ctx.resolve(reference)
        for mapping in ctx.named("Mapping").values():
            if Path(mapping.path).resolve() == target or (ctx.root / mapping.path).resolve() == target:
                return mapping
            if _source_file(ctx, mapping) == target:
                return mapping
        return None
    return ctx.named("Mapping").get(reference)


def _source_file(ctx: CheckContext, doc: ParsedDocument) -> Path:
    for file in ctx.docs.files:
        if ctx.docs.display(file) == doc.path:
            return file.resolve()
    return Path(doc.path).resolve()


def check_flow_references(ctx: CheckContext, doc: ParsedDocument) -> None:
    flow: Flow = doc.model
    machines = ctx.named("StateMachine")
    flows = ctx.named("Flow")
    seen_ids: dict[str, Loc] = {}
    refs = list(iter_steps(flow))
    all_ids = {ref.id for ref in refs}
    for ref in refs:
        step, loc = ref.step, ref.loc
        if step.id is not None:
            if step.id in seen_ids:
                ctx.report(doc, "SL015", f"step id {step.id!r} is used twice in flow {flow.name!r}", (*loc, "id"))
            seen_ids[step.id] = loc
        for reference in step_type_of(step).handler.references(step):
            _check_reference(ctx, doc, reference, (*loc, *reference.at), machines, flows)
        if isinstance(step.on_error, GotoAction) and step.on_error.goto not in all_ids:
            ctx.report(
                doc,
                "SL027",
                f"`goto` target {step.on_error.goto!r} is not a step of this flow",
                (*loc, "on_error", "goto"),
                hint=did_you_mean(step.on_error.goto, all_ids),
            )
    if flow.on_exception is not None:
        check_call(ctx, doc, flow.on_exception.call, ("on_exception", "call"))
    trigger = flow.trigger
    kind = trigger_type_of(trigger)
    spec = trigger_spec(trigger)
    if kind.schema_field and (schema := kind.field_value(spec, kind.schema_field)):
        field = type(spec).model_fields.get(kind.schema_field)
        name = (field.alias if field is not None else None) or kind.schema_field
        check_schema_ref(ctx, doc, str(schema), ("trigger", kind.key, name))
    if kind.call_field and (call := kind.field_value(spec, kind.call_field)):
        check_call(ctx, doc, call, ("trigger", kind.key, kind.call_field))
    if kind.connection_field and (connection := kind.field_value(spec, kind.connection_field)):
        check_connection_ref(ctx, doc, connection, ("trigger", kind.key, kind.connection_field))
        if kind.needs:
            loc = ("trigger", kind.key, kind.connection_field)
            _check_connection_provides(ctx, doc, str(connection), kind.needs, loc)


def _check_connection_provides(ctx: CheckContext, doc: ParsedDocument, name: str, need: str, loc: Loc) -> None:
    """A trigger kind that reads its connection through something besides calls (`TriggerType.needs`)
    needs a connection whose connector provides it (`ConnectorType.provides`, SL047)."""
    connection = ctx.named("Connection").get(name)
    if connection is None:
        return
    connector_type = ctx.registry.get(str(connection.model.type))
    if connector_type is None or need in connector_type.provides:
        return
    able = sorted(t.name for t in ctx.registry if need in t.provides)
    ctx.report(
        doc,
        "SL047",
        f"connection {name!r} is of type {connector_type.name!r}, which provides no {need} (this trigger needs one)",
        loc,
        hint=f"use a connection of type {' or '.join(repr(n) for n in able)}" if able else None,
    )


def _check_reference(
    ctx: CheckContext,
    doc: ParsedDocument,
    reference: Reference,
    loc: Loc,
    machines: dict[str, ParsedDocument],
    flows: dict[str, ParsedDocument],
) -> None:
    """One name a step uses (runtime/step_api.py `Reference`) must resolve."""
    name = reference.name
    if reference.kind == "operation":
        check_call(ctx, doc, name, loc)
    elif reference.kind == "mapping":
        target = resolve_mapping(ctx, name)
        broken = ctx.broken("Mapping", None if name.endswith(MAPPING_SUFFIXES) else name)
        if target is None and not broken:
            ctx.report(doc, "SL022", f"unknown mapping {name!r}", loc, hint=did_you_mean(name, ctx.named("Mapping")))
        elif isinstance(target, Path):
            check_template_path(ctx, doc, name, loc)
    elif reference.kind == "schema":
        check_schema_ref(ctx, doc, name, loc)
    elif reference.kind == "state_machine":
        if name not in machines and not ctx.broken("StateMachine", name):  # a broken one is reported where declared
            ctx.report(doc, "SL025", f"unknown state machine {name!r}", loc, hint=did_you_mean(name, machines))
    elif reference.kind == "state":
        machine = machines.get(reference.machine or "")
        if machine is not None and name not in machine.model.states():
            ctx.report(
                doc,
                "SL026",
                f"state machine {machine.name!r} has no state {name!r}",
                loc,
                hint=did_you_mean(name, machine.model.states()),
            )
    elif reference.kind == "flow" and name not in flows and not ctx.broken("Flow", name):
        ctx.report(doc, "SL029", f"unknown flow {name!r}", loc, hint=did_you_mean(name, flows))


def check_template_path(ctx: CheckContext, doc: ParsedDocument, relative: str, loc: Loc) -> Path | None:
    """Template files must stay under the project's mappings/ folder (SL032) and exist (SL022)."""
    mappings_dir = (ctx.root / ctx.docs.project.paths.mappings).resolve()
    raw = Path(relative)
    if raw.is_absolute() or ".." in raw.parts:
        ctx.report(
            doc,
            "SL032",
            f"template path {relative!r} must be relative and inside {ctx.docs.project.paths.mappings}/",
            loc,
        )
        return None
    candidate = ctx.root / raw
    if not str(raw).startswith(ctx.docs.project.paths.mappings.rstrip("/") + "/"):
        candidate = ctx.root / ctx.docs.project.paths.mappings / raw
    resolved = candidate.resolve()
    if not resolved.is_relative_to(mappings_dir):
        ctx.report(
            doc,
            "SL032",
            f"template {relative!r} resolves outside {ctx.docs.project.paths.mappings}/ (a symlink?)",
            loc,
        )
        return None
    if not resolved.is_file():
        shown = (
            resolved.relative_to(ctx.root.resolve()).as_posix() if resolved.is_relative_to(ctx.root.resolve()) else None
        )
        hint = file_did_you_mean(ctx, shown) if shown else None
        ctx.report(doc, "SL022", f"template file {relative!r} not found", loc, hint=hint)
        return None
    return resolved


def check_flowtest_references(ctx: CheckContext, doc: ParsedDocument) -> None:
    flows = ctx.named("Flow")
    if doc.model.flow not in flows and not ctx.broken("Flow", doc.model.flow):
        ctx.report(
            doc,
            "SL029",
            f"unknown flow {doc.model.flow!r}",
            ("flow",),
            hint=did_you_mean(doc.model.flow, flows),
        )
    if isinstance(doc.model.input, InputFile):
        check_input_file(ctx, doc, doc.model.input.file)
    for operation in doc.model.mocks:
        check_call(ctx, doc, operation, ("mocks", operation))
    for index, call in enumerate(doc.model.expect.calls):
        check_call(ctx, doc, call.operation, ("expect", "calls", index, "operation"))
    for index, operation in enumerate(doc.model.expect.not_called):
        check_call(ctx, doc, operation, ("expect", "not_called", index))


def check_input_file(ctx: CheckContext, doc: ParsedDocument, relative: str) -> None:
    """A FlowTest's `input: {file: ...}` must be a readable JSON or YAML file inside the project (SL036)."""
    from runtime.spec.inputs import InputFileError, read_input_file

    try:
        read_input_file(ctx.root, relative)
    except InputFileError as exc:
        hint = file_did_you_mean(ctx, relative) if exc.missing else None
        ctx.report(doc, "SL036", str(exc), ("input", "file"), hint=hint)


def check_connections(ctx: CheckContext) -> None:
    """Fixed-text fields (SQL) must not be templated (SL035); unused connections are reported (SL051)."""
    used: set[str] = set()
    for flow_doc in ctx.named("Flow").values():
        for ref in iter_steps(flow_doc.model):
            for target in _calls_of(ref.step):
                used.add(target.partition(".")[0])
        trigger = flow_doc.model.trigger
        kind = trigger_type_of(trigger)
        spec = trigger_spec(trigger)
        if kind.call_field and (call := kind.field_value(spec, kind.call_field)):
            used.add(str(call).partition(".")[0])
        if kind.connection_field and (connection := kind.field_value(spec, kind.connection_field)):
            used.add(str(connection))
    for name, doc in ctx.named("Connection").items():
        for op_name, operation in doc.model.operations.items():
            for field_name in type(operation).fixed_text_fields:
                text = getattr(operation, field_name, None)
                if isinstance(text, str) and ("{{" in text or "{%" in text):
                    ctx.report(
                        doc,
                        "SL035",
                        f"operation {op_name!r}: `{field_name}` is fixed text and cannot hold templates",
                        ("operations", op_name, field_name),
                        hint="use :name placeholders and pass values in `params`",
                    )
        if name not in used and ctx.named("Flow") and not ctx.broken("Flow"):
            ctx.report(doc, "SL051", f"connection {name!r} is not used by any flow", ("name",))


def _calls_of(step: StepBase) -> list[str]:
    return [ref.name for ref in step_type_of(step).handler.references(step) if ref.kind == "operation"]
