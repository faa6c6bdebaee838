"""The generated files kept in the repository: JSON Schema, reference page, diagnostic codes.

`python -m runtime.docgen` (or `make docs`) rewrites them; `tests/spec/test_generated_fresh.py`
fails when a committed copy differs from what the models produce.
"""

from __future__ import annotations

import sys
from pathlib import Path

from runtime.codes import render_markdown
from runtime.expr.reference import render as render_expressions
from runtime.plugins import ConnectorRegistry, default_registry
from runtime.spec.reference import render
from runtime.spec.schema import json_schema_text

SCHEMA_FILE = "schemas/syncline.schema.json"
REFERENCE_FILE = "docs/reference.md"
DIAGNOSTICS_FILE = "docs/diagnostics.md"
EXPRESSIONS_FILE = "docs/expressions.md"


def generated_files(registry: ConnectorRegistry) -> dict[str, str]:
    return {
        SCHEMA_FILE: json_schema_text(registry),
        REFERENCE_FILE: render(registry),
        DIAGNOSTICS_FILE: render_markdown(),
        EXPRESSIONS_FILE: render_expressions(),
    }


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path.cwd()
    for relative, text in generated_files(default_registry()).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
