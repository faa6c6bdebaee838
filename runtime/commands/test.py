"""`syncline test [PATH...]`: run the inline tests of Mappings and every FlowTest of the project.

Failures are reported as diagnostics (SL034) at the failing test with a readable difference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from runtime.compare import differences
from runtime.compiler import CheckResult, check_project
from runtime.compiler.context import CheckContext
from runtime.compiler.references import resolve_mapping
from runtime.errors import Diagnostic, ExpressionError
from runtime.expr import CompileError
from runtime.mappings import CompiledMapping, compile_mapping
from runtime.spec.documents import ParsedDocument


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("test", help="run Mapping tests and FlowTests against mocked systems")
    p.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="project folder or files")
    p.set_defaults(handler=run)


def mapping_for(ctx: CheckContext, doc: ParsedDocument) -> CompiledMapping:
    """Compile a Mapping document with its schemas and template (project already checked)."""
    mapping = doc.model
    schemas = {}
    for key in ("input_schema", "output_schema"):
        relative = getattr(mapping, key)
        schemas[key] = ctx.load_schema(relative).schema if relative else None
    template_source = None
    template_name = "template"
    if mapping.template is not None:
        target = resolve_mapping(ctx, mapping.template)
        assert isinstance(target, Path)
        template_source = target.read_text(encoding="utf-8")
        template_name = mapping.template
    return compile_mapping(
        mapping.name,
        ctx.engine,
        fields=doc.source.data.get("fields") if mapping.fields is not None else None,
        template_source=template_source,
        template_name=template_name,
        input_schema=schemas["input_schema"],
        output_schema=schemas["output_schema"],
    )


def mapping_test_failures(result: CheckResult) -> tuple[list[Diagnostic], int]:
    """Run every Mapping test of a checked project: (failures, tests run)."""
    ctx = result.context
    assert ctx is not None
    failures: list[Diagnostic] = []
    count = 0
    for doc in ctx.named("Mapping").values():
        if not doc.model.tests:
            continue
        try:
            compiled = mapping_for(ctx, doc)
        except CompileError as exc:
            failures.append(doc.diag(exc.code, exc.message, ("fields",)))
            continue
        for index, test in enumerate(doc.model.tests):
            count += 1
            label = test.name or f"test {index + 1}"
            loc = ("tests", index)
            try:
                actual = compiled(test.input, {"vars": test.vars})
            except ExpressionError as exc:
                failures.append(doc.diag("SL034", f"mapping {doc.name!r} {label}: {exc}", loc))
                continue
            diffs = differences(test.output, actual, exact=test.exact)
            if diffs:
                failures.append(doc.diag("SL034", f"mapping {doc.name!r} {label} failed: " + "; ".join(diffs), loc))
    return failures, count


def run_mapping_tests(path: Path) -> list[Diagnostic]:
    result = check_project(path)
    if result.errors:
        return result.diagnostics
    failures, _ = mapping_test_failures(result)
    return failures


def run(args: argparse.Namespace) -> int:
    failed = False
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():
            print(f"syncline test: {raw}: no such file or folder", file=sys.stderr)
            return 2
        result = check_project(path)
        if result.errors:
            for d in result.diagnostics:
                print(d.text())
            print(f"{len(result.errors)} problems: fix them before testing", file=sys.stderr)
            return 1
        failures, count = mapping_test_failures(result)
        for d in failures:
            print(d.text())
        flow_failures, flow_count = asyncio.run(flowtest_failures(result))
        for d in flow_failures:
            print(d.text())
        total = count + flow_count
        bad = len(failures) + len(flow_failures)
        print(
            f"mapping tests: {count - len(failures)} passed, {len(failures)} failed; "
            f"flow tests: {flow_count - len(flow_failures)} passed, {len(flow_failures)} failed"
        )
        print(f"{total - bad} passed, {bad} failed")
        failed = failed or bool(bad)
    return 1 if failed else 0


async def flowtest_failures(result: CheckResult) -> tuple[list[Diagnostic], int]:
    """Run every FlowTest of a checked project: (failures, tests run)."""
    from runtime.engine.plan import build_plan
    from runtime.testing.flowtest import run_flowtest

    ctx = result.context
    assert ctx is not None
    tests = list(ctx.named("FlowTest").values())
    if not tests:
        return [], 0
    plan = build_plan(result)
    failures = []
    for doc in tests:
        outcome = await run_flowtest(plan, doc)
        if not outcome.passed:
            failures.append(outcome.diagnostic())
    return failures, len(tests)
