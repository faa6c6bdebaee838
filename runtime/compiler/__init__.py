"""Load → check: turns a project folder into checked documents or diagnostics (pure, no IO beyond
reading the project's files). `check_project` is what `syncline validate` runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtime.compiler.context import CheckContext
from runtime.compiler.expressions import (
    check_document_expressions,
    check_flow_expressions,
    check_jsonpath_fields,
)
from runtime.compiler.loader import ProjectDocuments, load_documents
from runtime.compiler.loops import check_goto_loops
from runtime.compiler.mappings import check_mapping
from runtime.compiler.ownership import check_ownership
from runtime.compiler.policy_static import check_policies
from runtime.compiler.references import (
    check_connections,
    check_flow_references,
    check_flowtest_references,
    check_template_path,
    index_documents,
)
from runtime.compiler.triggers import check_triggers
from runtime.compiler.typed import check_typed
from runtime.errors import Diagnostic
from runtime.expr import ExpressionEngine
from runtime.plugins import ConnectorRegistry, default_registry
from runtime.spec.documents import DocumentKinds

__all__ = ["CheckResult", "check_project", "check_template_path"]


@dataclass
class CheckResult:
    docs: ProjectDocuments
    context: CheckContext | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


_KINDS: dict[int, DocumentKinds] = {}


def document_kinds(registry: ConnectorRegistry) -> DocumentKinds:
    kinds = _KINDS.get(id(registry))
    if kinds is None:
        kinds = _KINDS[id(registry)] = DocumentKinds(registry)
    return kinds


def check_project(
    path: Path, *, registry: ConnectorRegistry | None = None, engine: ExpressionEngine | None = None
) -> CheckResult:
    """Load the project at `path` and run every check; diagnostics are sorted by file and line."""
    registry = registry or default_registry()
    docs = load_documents(path, document_kinds(registry))
    ctx = CheckContext(docs, engine or ExpressionEngine(), registry)
    index_documents(ctx)
    for doc in ctx.named("Flow").values():
        check_flow_references(ctx, doc)
        check_flow_expressions(ctx, doc)
        check_goto_loops(ctx, doc)
    for doc in ctx.named("Mapping").values():
        check_mapping(ctx, doc)
    for doc in ctx.named("FlowTest").values():
        check_flowtest_references(ctx, doc)
    for kind in ("Connection", "Policy"):
        for doc in ctx.named(kind).values():
            check_document_expressions(ctx, doc, doc.source.data)
    check_connections(ctx)
    check_jsonpath_fields(ctx)
    check_triggers(ctx)
    check_ownership(ctx)
    check_policies(ctx)
    check_typed(ctx)
    diagnostics = sorted(set(docs.diagnostics + ctx.diagnostics))
    return CheckResult(docs, ctx, diagnostics)
