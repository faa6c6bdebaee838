"""`syncline validate [PATH...] [--format text|json|github] [--strict]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.compiler import check_project
from runtime.compiler.loader import find_root
from runtime.errors import Diagnostic

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check project files: schema, references, expressions, governance")
    p.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="project folder or files (default: .)")
    p.add_argument("--format", choices=["text", "json", "github"], default="text", help="output format")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.set_defaults(handler=run)


def collect(paths: list[str]) -> tuple[list[Diagnostic], int, str | None]:
    """Diagnostics for every distinct project among `paths`, and how many documents were read."""
    seen_roots: set[Path] = set()
    diagnostics: list[Diagnostic] = []
    documents = 0
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            return [], 0, f"syncline validate: {raw}: no such file or folder"
        root = find_root(path)
        key = root.resolve() if root is not None else path.resolve()
        if key in seen_roots:
            continue
        seen_roots.add(key)
        result = check_project(path)
        diagnostics.extend(result.diagnostics)
        documents += len(result.docs.documents) + (1 if result.docs.project_doc else 0)
    return diagnostics, documents, None


def run(args: argparse.Namespace) -> int:
    diagnostics, documents, usage = collect(args.paths)
    if usage:
        print(usage, file=sys.stderr)
        return EXIT_USAGE
    if args.strict:
        diagnostics = [Diagnostic(d.path, d.line, d.col, d.code, d.message, "error", d.hint) for d in diagnostics]
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    if args.format == "json":
        print(
            json.dumps(
                {
                    "errors": errors,
                    "warnings": warnings,
                    "documents": documents,
                    "diagnostics": [d.as_dict() for d in diagnostics],
                },
                indent=2,
            )
        )
    else:
        for d in diagnostics:
            print(d.github() if args.format == "github" else d.text())
        if args.format == "text":
            verdict = "valid" if errors == 0 else "invalid"
            print(f"{verdict}: {documents} documents, {errors} errors, {warnings} warnings", file=sys.stderr)
    return EXIT_PROBLEMS if errors else EXIT_OK
