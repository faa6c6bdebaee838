"""The built-in step kinds: one module per kind, each exporting `STEP`, a `runtime.step_api.StepType`
named in the `syncline.steps` entry points of pyproject.toml (as plugin step kinds are in theirs).

A handler's `compile(step, compiler, compiled)` returns the step's compiled fields (stored on the
`CompiledStep`); `execute(call)` runs it for one run and returns the step's output. Handlers never
touch the store or the clock directly: they go through the `StepCall` they are given.
"""

from __future__ import annotations

# The flow model (and with it the step registry) is complete before any step module runs: a step
# module imported first would otherwise be loaded again, half-initialised, by the registry.
import runtime.spec.flow  # noqa: F401
from runtime.step_api import StepHandler


def handler_for(kind: str) -> StepHandler:
    """The handler of the installed step kind with this key."""
    from runtime.step_registry import step_type

    return step_type(kind).handler
