"""What every check needs: the parsed documents by kind and name, the expression engine, and a sink
for diagnostics. Checks are pure: they read the project (files under its root) and report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import canonical
from runtime.compiler.loader import ProjectDocuments
from runtime.errors import Diagnostic
from runtime.expr import ExpressionEngine
from runtime.plugins import ConnectorRegistry
from runtime.spec.documents import ParsedDocument
from runtime.spec.yamlload import Loc


@dataclass
class SchemaFile:
    path: Path
    schema: dict[str, Any] | None
    problem: str | None = None


@dataclass
class CheckContext:
    docs: ProjectDocuments
    engine: ExpressionEngine
    registry: ConnectorRegistry
    diagnostics: list[Diagnostic] = field(default_factory=list)
    by_kind: dict[str, dict[str, ParsedDocument]] = field(default_factory=dict)
    schemas: dict[Path, SchemaFile] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.docs.root

    def named(self, kind: str) -> dict[str, ParsedDocument]:
        return self.by_kind.get(kind, {})

    def broken(self, kind: str, name: str | None = None) -> bool:
        """Whether a document of `kind` (named `name`; any, when None) was reported as unparsable:
        a reference to it is not reported again as unknown."""
        if name is None:
            return any(k in (kind, "") for k, _ in self.docs.broken)
        return any(k in (kind, "") and n in (name, "") for k, n in self.docs.broken)

    def report(
        self,
        doc: ParsedDocument,
        code: str,
        message: str,
        loc: Loc = (),
        *,
        key: bool = False,
        hint: str | None = None,
        line_offset: int = 0,
    ) -> None:
        line, col = doc.pos(loc, key=key)
        if line_offset and line:
            line += line_offset
        self.diagnostics.append(Diagnostic.make(code, message, doc.path, line, col, hint))

    def resolve(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    def load_schema(self, relative: str) -> SchemaFile:
        """Read and check a JSON Schema file once (cached)."""
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        path = canonical.schema_path(relative) if canonical.is_reference(relative) else self.resolve(relative)
        if path in self.schemas:
            return self.schemas[path]
        if not path.is_file():
            known = f" (canonical schemas: {', '.join(canonical.names())})" if canonical.is_reference(relative) else ""
            entry = SchemaFile(path, None, f"schema file {relative!r} not found{known}")
        else:
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                entry = SchemaFile(path, None, f"schema {relative!r} is not valid JSON: {exc}")
            else:
                try:
                    if not isinstance(schema, dict | bool):
                        raise SchemaError("a schema must be an object or a boolean")
                    validator_for(schema).check_schema(schema)  # type: ignore[arg-type]
                    entry = SchemaFile(path, schema if isinstance(schema, dict) else {})
                except SchemaError as exc:
                    where = "/".join(str(p) for p in exc.path) or "(root)"
                    entry = SchemaFile(
                        path,
                        None,
                        f"schema {relative!r} is not a valid JSON Schema at {where}: {exc.message}",
                    )
        self.schemas[path] = entry
        return entry
