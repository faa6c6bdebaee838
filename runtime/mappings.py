"""A `kind: Mapping` compiled once into a callable: field maps become one generated function,
template files render JSON that is parsed back with exact decimals; optional input and output
schemas are checked on every call."""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import ExpressionError
from runtime.expr import ExpressionEngine, Secret, loads
from runtime.expr.taint import mark
from runtime.payload_schema import PayloadSchema


class MappingError(ExpressionError):
    """A mapping's input or output does not satisfy its schema, or a template rendered bad JSON."""


@dataclass
class CompiledMapping:
    name: str
    _fields: Any = None
    _template: Any = None
    _input_validator: Any = None
    _output_validator: Any = None

    def __call__(self, value: Any, context: MappingABC[str, Any] | None = None) -> Any:
        """Map `value` (bound as `input`); `context` adds names such as `vars` or `steps`."""
        if self._input_validator is not None:
            _check(self._input_validator, value, f"mapping {self.name!r}: input")
        scope = dict(context or {})
        scope["input"] = value
        if self._fields is not None:
            result = self._fields.render(scope)
        else:
            text = self._template.render(scope)
            try:
                result = loads(text)
            except ValueError as exc:
                if isinstance(text, Secret):  # the parser's message quotes the text
                    raise MappingError(f"mapping {self.name!r}: the template did not render valid JSON") from None
                raise MappingError(f"mapping {self.name!r}: the template did not render valid JSON: {exc}") from None
            if isinstance(text, Secret):  # text built with a secret: every string parsed from it is marked
                result = mark(result)
        if self._output_validator is not None:
            _check(self._output_validator, result, f"mapping {self.name!r}: output")
        return result


def _check(validator: Any, value: Any, what: str) -> None:
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise MappingError(f"{what} does not match its schema at {where}: {error.message}")


def schema_validator(schema: dict[str, Any]) -> PayloadSchema:
    return PayloadSchema(schema)


def compile_mapping(
    name: str,
    engine: ExpressionEngine,
    *,
    fields: dict[str, Any] | None = None,
    template_source: str | None = None,
    template_name: str = "template",
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
) -> CompiledMapping:
    """Compile a mapping's body once (raises the engine's CompileError on bad syntax)."""
    compiled = CompiledMapping(name)
    if fields is not None:
        compiled._fields = engine.compile(fields)
    elif template_source is not None:
        compiled._template = engine.compile_template(template_source, name=template_name)
    else:
        raise ValueError("a mapping needs fields or a template")
    if input_schema is not None:
        compiled._input_validator = schema_validator(input_schema)
    if output_schema is not None:
        compiled._output_validator = schema_validator(output_schema)
    return compiled


def read_template(path: Path) -> str:
    return path.read_text(encoding="utf-8")
