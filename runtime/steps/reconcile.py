"""`reconcile`: read records from two systems, match them by key and compare fields with tolerances.

The output reports `matched`, `mismatched` (key, field, left, right), `only_left` and `only_right`;
a following step decides what to do (e.g. `fail` when anything is off).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from runtime.expr import PathCompiler
from runtime.spec.flow import ReconcileStep
from runtime.step_api import Loc, Reference, StepBase, StepHandler, StepType
from runtime.steps.call import invoke_operation

if TYPE_CHECKING:
    from runtime.engine.context import StepCall

_PATHS = PathCompiler()


class ReconcileHandler(StepHandler):
    """The `reconcile` step kind."""

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, ReconcileStep)
        return [
            Reference("operation", getattr(step.reconcile, side).call, ("reconcile", side, "call"), direct=False)
            for side in ("left", "right")
        ]

    def jsonpaths(self, step: StepBase) -> Sequence[tuple[Loc, str]]:
        assert isinstance(step, ReconcileStep)
        return [(("reconcile", side, "items"), getattr(step.reconcile, side).items) for side in ("left", "right")]

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, ReconcileStep)
        spec = step.reconcile
        sides = {}
        for side in ("left", "right"):
            part = getattr(spec, side)
            sides[side] = (
                compiler.operation(part.call),
                compiler.value(dict(part.with_), f"{compiled.id}.{side}"),
                _PATHS.compile(part.items),
            )
        tolerance = {k: Decimal(str(v)) for k, v in spec.tolerance.items()}
        return {
            "sides": sides,
            "key": compiler.value(spec.key, f"{compiled.id}.key"),
            "fields": list(spec.fields),
            "tolerance": tolerance,
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        records: dict[str, dict[str, Any]] = {}
        for side, (operation, params, items) in fields["sides"].items():
            output = await invoke_operation(call, operation, call.render(params), None)
            by_key: dict[str, Any] = {}
            for item in items.find(output):
                by_key[str(call.render(fields["key"], {"item": item}))] = item
            records[side] = by_key
        left, right = records["left"], records["right"]
        mismatched = []
        matched = 0
        for key in sorted(left.keys() & right.keys()):
            differences = [
                {"key": key, "field": name, "left": left[key].get(name), "right": right[key].get(name)}
                for name in fields["fields"]
                if not _same(left[key].get(name), right[key].get(name), fields["tolerance"].get(name))
            ]
            if differences:
                mismatched.extend(differences)
            else:
                matched += 1
        return {
            "matched": matched,
            "mismatched": mismatched,
            "only_left": sorted(left.keys() - right.keys()),
            "only_right": sorted(right.keys() - left.keys()),
        }


def _same(a: Any, b: Any, tolerance: Decimal | None) -> bool:
    if tolerance is not None:
        try:
            return abs(Decimal(str(a)) - Decimal(str(b))) <= tolerance
        except (InvalidOperation, ValueError):
            return bool(a == b)
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    same: bool = a == b
    return same


HANDLER = ReconcileHandler()
STEP = StepType("reconcile", ReconcileStep, HANDLER, order=130)
