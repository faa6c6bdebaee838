"""What a replay's dry run would do, in words an operator checks before replaying: the steps the
replay restores from the original run (skipped), the steps it runs again, the reads it made, the
writes it would make, and — when it would not complete — why.

The restored steps follow the executor's rule (`Executor._replayed_journal`): every step the
original completed, or with `from_step` those recorded before that step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.engine.context import CallLog
from runtime.engine.executor import RunResult
from runtime.engine.replay import ReplayRequest
from runtime.store.base import StepRecord, Store


def restored_steps(journal: list[StepRecord], from_step: str | None) -> list[str]:
    """The steps of the original run's `journal` a replay counts as done (restores, does not run):
    every completed one, or with `from_step` those recorded before that step — the step itself, its
    iterations and sub-steps run again."""
    restored: list[str] = []
    for record in journal:
        if from_step and (
            record.step_key == from_step
            or record.step_key.startswith((from_step + "[", from_step + ".", from_step + "/"))
        ):
            break
        if record.status in ("succeeded", "skipped") and record.step_key not in restored:
            restored.append(record.step_key)
    return restored


@dataclass
class DryRunReport:
    """What a replay would do, from its dry run: the steps it restores, the steps it runs again, the
    writes it would make, the reads it made, and — when it would not complete — why."""

    status: str
    skipped: list[str]
    rerun: list[str]
    side_effects: list[CallLog]
    reads: list[CallLog]
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "completes": self.problem is None,
            "problem": self.problem,
            "skipped": self.skipped,
            "rerun": self.rerun,
            "side_effects": [c.as_dict() for c in self.side_effects],
            "reads": [c.as_dict() for c in self.reads],
        }


async def dry_run_report(store: Store, request: ReplayRequest, outcome: RunResult) -> DryRunReport:
    """Describe the dry run `outcome` of replaying `request.run_id` (whose journal `store` holds)."""
    original = await store.journal(request.run_id)
    rerun: list[str] = []
    for record in outcome.journal:
        if record.step_key not in rerun:
            rerun.append(record.step_key)
    problem = None
    if outcome.status not in ("succeeded", "filtered"):
        failed = [r for r in outcome.journal if r.status == "failed"]
        where = f"step {failed[-1].step_key!r}" if failed else "the run"
        error = outcome.error or (failed[-1].error if failed else None) or {}
        detail = error.get("message") or error.get("reason") or outcome.status
        problem = f"the replay would end {outcome.status}: {where} fails: {detail}"
    return DryRunReport(
        status=outcome.status,
        skipped=restored_steps(original, request.from_step),
        rerun=rerun,
        side_effects=[c for c in outcome.calls if c.status == "planned"],
        reads=[c for c in outcome.calls if c.status not in ("planned", "suppressed")],
        problem=problem,
    )
