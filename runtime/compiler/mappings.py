"""Checks of `kind: Mapping` documents and template files: schemas resolve, templates stay inside
mappings/ and compile, field templates compile."""

from __future__ import annotations

from pathlib import Path

from runtime.compiler.context import CheckContext
from runtime.compiler.expressions import check_document_expressions
from runtime.compiler.references import check_schema_ref, check_template_path
from runtime.errors import Diagnostic
from runtime.expr import CompileError
from runtime.spec.documents import ParsedDocument
from runtime.spec.yamlload import Loc

MAX_TEMPLATE_BYTES = 1024 * 1024


def check_mapping(ctx: CheckContext, doc: ParsedDocument) -> None:
    mapping = doc.model
    if mapping.input_schema:
        check_schema_ref(ctx, doc, mapping.input_schema, ("input_schema",))
    if mapping.output_schema:
        check_schema_ref(ctx, doc, mapping.output_schema, ("output_schema",))
    if mapping.fields is not None:
        check_document_expressions(ctx, doc, doc.source.data.get("fields"), ("fields",))
    if mapping.template is not None:
        path = check_template_path(ctx, doc, mapping.template, ("template",))
        if path is not None:
            compile_template_file(ctx, doc, path, ("template",))


def compile_template_file(ctx: CheckContext, doc: ParsedDocument, path: Path, loc: Loc) -> object | None:
    shown = ctx.docs.display(path)
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_TEMPLATE_BYTES:
            ctx.report(doc, "SL006", f"template {shown} is larger than {MAX_TEMPLATE_BYTES} bytes", loc)
            return None
        source = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        ctx.report(doc, "SL007", f"cannot read template {shown}: {exc}", loc)
        return None
    try:
        return ctx.engine.compile_template(source, name=shown)
    except CompileError as exc:
        ctx.diagnostics.append(Diagnostic.make(exc.code, exc.message, shown, exc.line or 1, exc.col or 1, exc.hint))
        return None
