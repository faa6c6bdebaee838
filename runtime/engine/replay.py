"""Replay: run a finished (usually dead-lettered) run again as a new run linked to the original.

A whole-run replay counts every step the original completed as done, so only what failed (and
what came after) runs again; `from_step` re-runs that step and everything after it. The payload may
be edited, and the replay may run on the current flow version instead of the original one. Calls
without an explicit idempotency key keep the original run's default keys, so a target that saw the
original attempt recognises the replayed one. A dry run performs the reads and lists the writes the
replay would make, on a scratch copy of the journal, changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runtime.engine.executor import Executor, RunResult
from runtime.errors import SynclineError
from runtime.store.base import FINAL_STATUSES, NewRun, RunRecord, Store
from runtime.store.memory import MemoryStore

# Why a replay was refused: a stable value the admin API answers in `code` and the CLI prints.
ReplayRefusal = Literal["run_not_found", "run_not_ended", "flow_not_deployed", "unknown_step"]


class ReplayError(SynclineError):
    """The run cannot be replayed as asked (unknown run, unknown step, not ended yet); `reason` says
    which, as a stable value."""

    def __init__(self, reason: ReplayRefusal, message: str) -> None:
        super().__init__(message)
        self.reason: ReplayRefusal = reason


@dataclass
class ReplayRequest:
    run_id: str
    from_step: str | None = None
    input: Any = None
    edit_input: bool = False
    current_version: bool = False
    dry_run: bool = False


def _new_run(original: RunRecord, request: ReplayRequest, flow_version: str) -> NewRun:
    return NewRun(
        flow=original.flow,
        input=request.input if request.edit_input else original.input,
        trigger="replay",
        flow_version=flow_version,
        headers=dict(original.headers),
        correlation_id=original.correlation_id,
        ordering_key=original.ordering_key,
        business_keys=dict(original.business_keys),
        parent_run_id=original.parent_run_id,
        replay_of=original.id,
        replay_from_step=request.from_step,
        meta={"root_run_id": original.meta.get("root_run_id") or original.id},
    )


async def prepare_replay(executor: Executor, store: Store, request: ReplayRequest) -> tuple[RunRecord, NewRun]:
    original = await store.get_run(request.run_id)
    if original is None:
        raise ReplayError("run_not_found", f"no run {request.run_id!r}")
    if original.status not in FINAL_STATUSES:  # queued, running, retrying, waiting, held: it may still act
        raise ReplayError("run_not_ended", f"run {original.id} is {original.status}; replay it once it has ended")
    flow = executor.plan.flows.get(original.flow)
    if flow is None:
        raise ReplayError("flow_not_deployed", f"flow {original.flow!r} is not deployed")
    if request.from_step is not None:
        journal = await store.journal(original.id)
        known = {r.step_key for r in journal}
        if request.from_step not in known and flow.find_step(request.from_step) is None:
            raise ReplayError(
                "unknown_step",
                f"run {original.id} has no step {request.from_step!r} (steps: {', '.join(sorted(known)) or 'none'})",
            )
    version = flow.version if request.current_version else original.flow_version
    return original, _new_run(original, request, version)


async def replay(
    executor: Executor, store: Store, request: ReplayRequest, *, execute: bool = True
) -> RunResult | RunRecord:
    """Create the replay run (and execute it unless `execute` is false, leaving it to the workers)."""
    original, new = await prepare_replay(executor, store, request)
    if request.dry_run:
        return await dry_run(executor, store, original, new)
    created = await store.create_run(new, now=executor.clock.time())
    if original.status == "dead_lettered":  # only a dead-lettered run has a dead letter to mark
        await store.mark_replayed(original.id, created.run.id, now=executor.clock.time())
    if not execute:
        return created.run
    result = await executor.execute(created.run)
    result.journal = await store.journal(created.run.id)
    return result


async def dry_run(executor: Executor, store: Store, original: RunRecord, new: NewRun) -> RunResult:
    scratch = MemoryStore()
    await scratch.open()
    copy = NewRun(flow=original.flow, input=original.input, flow_version=original.flow_version, trigger="replay")
    created_original = await scratch.create_run(copy, now=executor.clock.time())
    for record in await store.journal(original.id):
        record.run_id = created_original.run.id
        await scratch.record_step(record)
    new.replay_of = created_original.run.id
    new.meta["root_run_id"] = original.meta.get("root_run_id") or original.id
    created = await scratch.create_run(new, now=executor.clock.time())
    trial = Executor(
        executor.plan,
        scratch,
        clock=executor.clock,
        secrets=executor.secrets,
        env=executor.env,
        connectors=executor.connectors,
        dry_run=True,
    )
    result = await trial.execute(created.run)
    result.journal = await scratch.journal(created.run.id)
    await scratch.close()
    return result
