"""The executable plan: a checked project compiled once (expressions, mappings, schemas, operations).

`build_plan` takes the result of `runtime.compiler.check_project` and returns a `Plan`, or raises
`ProjectError` with the diagnostics when the project has errors. Everything the executor evaluates
is compiled here, once per load; a running flow only renders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.compiler import CheckResult
from runtime.compiler.context import CheckContext
from runtime.compiler.references import resolve_mapping
from runtime.compiler.walk import step_id
from runtime.connector_api import ConnectorType, OperationSpec
from runtime.engine.retry import RetryPolicy
from runtime.errors import Diagnostic, ProjectError
from runtime.expr import Compiled, ExpressionEngine
from runtime.mappings import CompiledMapping, compile_mapping, schema_validator
from runtime.spec.common import parse_duration
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import Flow, StepBase
from runtime.spec.governance import Policy, StateMachine
from runtime.spec.project import Project
from runtime.spec.yamlload import Loc
from runtime.step_registry import step_type_of
from runtime.trigger_registry import trigger_spec, trigger_type_of

OPERATION_META_FIELDS = frozenset({"entity", "effect", "description"})


@dataclass
class CompiledOperation:
    connection: str
    name: str
    system: str
    connector: str
    spec: OperationSpec
    fields: Compiled  # the operation's own fields, rendered with `params` per call

    @property
    def target(self) -> str:
        return f"{self.connection}.{self.name}"

    @property
    def effect(self) -> str:
        return str(getattr(self.spec.effect, "value", self.spec.effect))

    @property
    def entity(self) -> str | None:
        return self.spec.entity


@dataclass
class CompiledConnection:
    name: str
    system: str
    connector_type: ConnectorType
    config: Compiled  # rendered with env() and secret() when the connector starts
    operations: dict[str, CompiledOperation]


@dataclass
class CompiledStep:
    id: str
    kind: str
    model: StepBase
    loc: Loc
    condition: Compiled | None
    fields: dict[str, Any]
    retry: RetryPolicy
    timeout: float | None
    idempotency_key: Compiled | None
    compensate: CompiledStep | None = None


@dataclass
class CompiledFlow:
    name: str
    model: Flow
    doc: ParsedDocument
    version: str
    steps: list[CompiledStep]
    idempotency_key: Compiled | None = None
    ordering_key: Compiled | None = None
    correlation_id: Compiled | None = None
    business_keys: dict[str, Compiled] = field(default_factory=dict)
    vars: Compiled | None = None
    notice: tuple[CompiledOperation, Compiled] | None = None

    def find_step(self, step_id: str) -> CompiledStep | None:
        stack = list(self.steps)
        while stack:
            step = stack.pop(0)
            if step.id == step_id:
                return step
            stack.extend(_children(step))
        return None


def _children(step: CompiledStep) -> list[CompiledStep]:
    out: list[CompiledStep] = []
    for value in step.fields.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, CompiledStep):
                    out.append(item)
                elif isinstance(item, tuple):
                    out.extend(x for x in item[1] if isinstance(x, CompiledStep))
    return out


@dataclass
class Plan:
    root: Path
    project: Project
    engine: ExpressionEngine
    flows: dict[str, CompiledFlow]
    connections: dict[str, CompiledConnection]
    mappings: dict[str, CompiledMapping]
    machines: dict[str, StateMachine]
    policies: list[Policy]
    schemas: dict[str, Any]
    version: str
    check: CheckResult

    def flow(self, name: str) -> CompiledFlow:
        flow = self.flows.get(name)
        if flow is None:
            raise KeyError(name)
        return flow

    def operation(self, target: str) -> CompiledOperation:
        connection, _, name = target.partition(".")
        return self.connections[connection].operations[name]

    def mapping(self, reference: str) -> CompiledMapping:
        return self.mappings[reference]

    def validator(self, relative: str) -> Any:
        return self.schemas[relative]


class StepCompiler:
    """What a step kind's `compile` may use: expressions, mappings, schemas, operations, nested steps."""

    def __init__(
        self, builder: _Builder, flow: Flow, defaults_retry: RetryPolicy, default_timeout: float | None = None
    ) -> None:
        self._builder = builder
        self.default_timeout = default_timeout
        self.flow = flow
        self.defaults_retry = defaults_retry
        self.engine = builder.engine

    def value(self, value: Any, name: str) -> Compiled:
        return self.engine.compile(value, name=f"{self.flow.name}:{name}")

    def expression(self, source: str, name: str) -> Compiled:
        return self.engine.compile_expression(source, name=f"{self.flow.name}:{name}")

    def mapping(self, reference: str) -> CompiledMapping:
        return self._builder.mapping(reference)

    def schema(self, relative: str) -> Any:
        return self._builder.schema(relative)

    def operation(self, target: str) -> CompiledOperation:
        connection, _, name = target.partition(".")
        return self._builder.connections[connection].operations[name]

    def machine(self, name: str) -> StateMachine:
        machine: StateMachine = self._builder.ctx.named("StateMachine")[name].model
        return machine

    def steps(self, steps: list[StepBase], loc: Loc) -> list[CompiledStep]:
        return [self.step(step, (*loc, index)) for index, step in enumerate(steps)]

    def step(self, step: StepBase, loc: Loc) -> CompiledStep:
        step_type = step_type_of(step)
        calls_operation = step_type.handler.calls_operation  # the project's defaults apply to its call
        kind = step_type.key
        sid = step_id(step, loc)
        if step.retry is not None:
            retry = RetryPolicy.from_spec(step.retry)
        elif calls_operation:
            retry = self.defaults_retry
        else:
            retry = RetryPolicy()
        compiled = CompiledStep(
            id=sid,
            kind=kind,
            model=step,
            loc=loc,
            condition=self.expression(step.if_, f"{sid}.if") if step.if_ else None,
            fields={},
            retry=retry,
            timeout=parse_duration(step.timeout)
            if step.timeout
            else (self.default_timeout if calls_operation else None),
            idempotency_key=self.value(step.idempotency_key, f"{sid}.idempotency_key")
            if step.idempotency_key
            else None,
        )
        compiled.fields = step_type.handler.compile(step, self, compiled)
        if step.compensate is not None:
            compiled.compensate = self.step(step.compensate, (*loc, "compensate"))
            compiled.compensate.id = f"{sid}~compensate"
        return compiled


class _Builder:
    def __init__(self, result: CheckResult) -> None:
        assert result.context is not None
        self.ctx: CheckContext = result.context
        self.engine = self.ctx.engine
        self.root = self.ctx.root
        self.mappings: dict[str, CompiledMapping] = {}
        self.schemas: dict[str, Any] = {}
        self.connections: dict[str, CompiledConnection] = {}

    def schema(self, relative: str) -> Any:
        if relative not in self.schemas:
            entry = self.ctx.load_schema(relative)
            if entry.schema is None:
                raise ProjectError([Diagnostic.make("SL023", entry.problem or "schema missing", relative)])
            self.schemas[relative] = schema_validator(entry.schema)
        return self.schemas[relative]

    def mapping(self, reference: str) -> CompiledMapping:
        if reference in self.mappings:
            return self.mappings[reference]
        target = resolve_mapping(self.ctx, reference)
        if isinstance(target, Path):
            compiled = compile_mapping(
                reference, self.engine, template_source=target.read_text(encoding="utf-8"), template_name=reference
            )
        elif target is not None:
            compiled = self._mapping_doc(target)
        else:
            raise ProjectError([Diagnostic.make("SL022", f"unknown mapping {reference!r}")])
        self.mappings[reference] = compiled
        return compiled

    def _mapping_doc(self, doc: ParsedDocument) -> CompiledMapping:
        if doc.name in self.mappings:
            return self.mappings[doc.name]
        mapping = doc.model
        template_source = None
        if mapping.template is not None:
            target = resolve_mapping(self.ctx, mapping.template)
            assert isinstance(target, Path)
            template_source = target.read_text(encoding="utf-8")
        input_schema = self.ctx.load_schema(mapping.input_schema).schema if mapping.input_schema else None
        output_schema = self.ctx.load_schema(mapping.output_schema).schema if mapping.output_schema else None
        compiled = compile_mapping(
            mapping.name,
            self.engine,
            fields=doc.source.data.get("fields") if mapping.fields is not None else None,
            template_source=template_source,
            template_name=mapping.template or "template",
            input_schema=input_schema,
            output_schema=output_schema,
        )
        self.mappings[doc.name] = compiled
        return compiled

    def connection(self, doc: ParsedDocument) -> CompiledConnection:
        model = doc.model
        connector_type = self.ctx.registry.get(model.type)
        assert connector_type is not None
        raw_ops = doc.source.data.get("operations") or {}
        operations: dict[str, CompiledOperation] = {}
        for name, spec in model.operations.items():
            raw = {k: v for k, v in (raw_ops.get(name) or {}).items() if k not in OPERATION_META_FIELDS}
            for fixed in type(spec).fixed_text_fields:
                raw.pop(fixed, None)
            operations[name] = CompiledOperation(
                connection=model.name,
                name=name,
                system=model.system_name(),
                connector=model.type,
                spec=spec,
                fields=self.engine.compile(raw, name=f"{model.name}.{name}"),
            )
        return CompiledConnection(
            name=model.name,
            system=model.system_name(),
            connector_type=connector_type,
            config=self.engine.compile(doc.source.data.get("config") or {}, name=f"{model.name}.config"),
            operations=operations,
        )

    def flow(self, doc: ParsedDocument, project: Project) -> CompiledFlow:
        flow: Flow = doc.model
        defaults = RetryPolicy.from_spec(project.defaults.retry) if project.defaults.retry else RetryPolicy()
        compiler = StepCompiler(self, flow, defaults, parse_duration(project.defaults.timeout))
        steps = compiler.steps(list(flow.steps), ("steps",))
        trigger = flow.trigger
        kind = trigger_type_of(trigger)
        spec = trigger_spec(trigger)
        idem = kind.field_value(spec, kind.idempotency_field)
        ordering = kind.field_value(spec, kind.ordering_field)
        return CompiledFlow(
            name=flow.name,
            model=flow,
            doc=doc,
            version=_digest(doc.source.data),
            steps=steps,
            idempotency_key=compiler.value(idem, "trigger.idempotency_key") if idem else None,
            ordering_key=compiler.value(ordering, "trigger.ordering_key") if ordering else None,
            correlation_id=compiler.value(flow.correlation_id, "correlation_id") if flow.correlation_id else None,
            business_keys={k: compiler.value(v, f"business_keys.{k}") for k, v in flow.business_keys.items()},
            vars=compiler.value(doc.source.data.get("vars") or {}, "vars"),
            notice=(
                compiler.operation(flow.on_exception.call),
                compiler.value(dict(flow.on_exception.with_), "on_exception.with"),
            )
            if flow.on_exception is not None
            else None,
        )


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def build_plan(result: CheckResult) -> Plan:
    """Compile a checked project; raises ProjectError when it has errors."""
    if result.errors or result.context is None:
        raise ProjectError(result.errors or result.diagnostics)
    builder = _Builder(result)
    ctx = builder.ctx
    project = result.docs.project
    for doc in ctx.named("Connection").values():
        builder.connections[doc.name] = builder.connection(doc)
    for doc in ctx.named("Mapping").values():
        builder._mapping_doc(doc)
    flows = {name: builder.flow(doc, project) for name, doc in ctx.named("Flow").items()}
    versions = "".join(sorted(f.version for f in flows.values()))
    return Plan(
        root=ctx.root,
        project=project,
        engine=builder.engine,
        flows=flows,
        connections=builder.connections,
        mappings=builder.mappings,
        machines={name: doc.model for name, doc in ctx.named("StateMachine").items()},
        policies=[doc.model for doc in ctx.named("Policy").values()],
        schemas=builder.schemas,
        version=hashlib.sha256(versions.encode()).hexdigest()[:12],
        check=result,
    )
