"""Syncline's expression engine: Jinja2 syntax, compiled to Python over JSON values, sandboxed and bounded.

Public API (everything else in this package is internal):

- `ExpressionEngine(limits=, registry=)` with `.compile(value)`, `.compile_expression(src)`,
  `.compile_template(src, name)`; each returns a `Compiled` with `.render(context)`, `.source`,
  `.is_constant`, `.references`, `.free_names`.
- `Limits`: size, time and nesting bounds. `Registry` / `default_registry()` / `Spec`: the allow-list.
- `CompileError` (codes SL030, SL031, SL033), `SandboxViolation`, `RenderError`.
- `Secret`, `SecretText`, `redact`, `redact_value`: secret-marked values and masking; `Taint` and
  `TAINT_KEY`: the render context's switch that keeps values derived from a secret marked
  (taint.py). `loads` / `dumps`: JSON with exact decimals.
- `round_money`: money rounding. `PathCompiler`: RFC 9535 JSONPath over Decimal documents.
- `CLOCK_KEY`, `SECRETS_KEY`, `ENV_KEY`: where `now()`, `secret()` and `env()` find their services
  in the render context.

Layout: parsing.py (Jinja2 → AST), codegen.py (AST → Python), ops.py (helpers the generated code
calls), filters.py / tests_builtin.py / functions.py (the allow-list), registry.py, jsonpath.py,
jsonvalues.py, decimals.py, secrets.py, taint.py, limits.py, errors.py, engine.py.
"""

from runtime.expr.decimals import round_money
from runtime.expr.engine import Compiled, ExpressionEngine
from runtime.expr.errors import CompileError, RenderError, SandboxViolation
from runtime.expr.functions import CLOCK_KEY, ENV_KEY, SECRETS_KEY
from runtime.expr.jsonpath import JSONPath, PathCompiler
from runtime.expr.jsonvalues import dumps, loads
from runtime.expr.limits import Limits
from runtime.expr.registry import Registry, Spec, default_registry
from runtime.expr.secrets import TAINT_KEY, Secret, SecretText, Taint, redact, redact_value

__all__ = [
    "CLOCK_KEY",
    "ENV_KEY",
    "SECRETS_KEY",
    "TAINT_KEY",
    "CompileError",
    "Compiled",
    "ExpressionEngine",
    "JSONPath",
    "Limits",
    "PathCompiler",
    "Registry",
    "RenderError",
    "SandboxViolation",
    "Secret",
    "SecretText",
    "Spec",
    "Taint",
    "default_registry",
    "dumps",
    "loads",
    "redact",
    "redact_value",
    "round_money",
]
