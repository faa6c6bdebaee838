"""`syncline validate [PATH...] [--format text|json|github] [--strict] [--env]`.

`--env` also checks this environment: every secret and setting that a connection or a webhook needs
(literal `secret('NAME')` / `env('NAME')` without a fallback) and that is not set is SL052 at the file
and line that names it, so CI can check a deployment's environment before `serve` refuses to start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.compiler import check_project
from runtime.compiler.loader import find_root
from runtime.compiler.settings import missing_settings, required_settings
from runtime.errors import Diagnostic
from runtime.secrets import SecretStore, env_resolver

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check project files: schema, references, expressions, governance")
    p.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="project folder or files (default: .)")
    p.add_argument("--format", choices=["text", "json", "github"], default="text", help="output format")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument(
        "--env",
        action="store_true",
        help="also report secrets and settings that connections and webhooks need and that are not set here (SL052)",
    )
    p.set_defaults(handler=run)


def collect(paths: list[str], *, check_env: bool = False) -> tuple[list[Diagnostic], int, str | None]:
    """Diagnostics for every distinct project among `paths`, and how many documents were read;
    with `check_env`, also the secrets and settings this process's environment lacks."""
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
        if check_env:
            diagnostics.extend(missing_settings(required_settings(result.docs), SecretStore().resolve, env_resolver()))
        documents += len(result.docs.documents) + (1 if result.docs.project_doc else 0)
    return diagnostics, documents, None


def run(args: argparse.Namespace) -> int:
    diagnostics, documents, usage = collect(args.paths, check_env=args.env)
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
