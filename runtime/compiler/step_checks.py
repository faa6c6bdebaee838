"""Checks a step kind declares itself (runtime/step_api.py `StepHandler.check`): each step's findings,
reported at the step's position in its flow."""

from __future__ import annotations

from runtime.compiler.context import CheckContext
from runtime.compiler.walk import iter_steps
from runtime.step_registry import step_type_of


def check_step_findings(ctx: CheckContext) -> None:
    for doc in ctx.named("Flow").values():
        for ref in iter_steps(doc.model):
            for finding in step_type_of(ref.step).handler.check(ref.step, ref.id):
                ctx.report(doc, finding.code, finding.message, (*ref.loc, *finding.at), hint=finding.hint)
