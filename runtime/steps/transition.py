"""`transition`: move an entity (by key) to a state of its state machine.

The state is kept per (machine, key) in the store and changed with compare-and-set, so two runs
racing for one entity cannot both move it. A transition the machine does not allow ends the run as
a business exception `INVALID_TRANSITION`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.engine.errors import BusinessException, RunSuspended, StepFailed
from runtime.spec.common import parse_duration
from runtime.spec.flow import TransitionStep
from runtime.step_api import Reference, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class TransitionHandler(StepHandler):
    """The `transition` step kind."""

    def references(self, step: StepBase) -> Sequence[Reference]:
        assert isinstance(step, TransitionStep)
        spec = step.transition
        return [
            Reference("state_machine", spec.machine, ("transition", "machine")),
            Reference("state", spec.to, ("transition", "to"), machine=spec.machine),
        ]

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, TransitionStep)
        spec = step.transition
        return {
            "machine": compiler.machine(spec.machine),
            "to": spec.to,
            "key": compiler.value(spec.key, f"{compiled.id}.key"),
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        machine = fields["machine"]
        key = str(call.render(fields["key"]))
        target = fields["to"]
        call.input = {"machine": machine.name, "key": key, "to": target}
        if call.executor.dry_run:  # a dry run changes no state; it says what it would set
            return {"machine": machine.name, "key": key, "to": target, "dry_run": True}
        store = call.executor.store
        for _ in range(5):
            current = await store.get_state(machine.name, key)
            source = current if current is not None else machine.initial
            if target == source and current is not None:
                return {"machine": machine.name, "key": key, "from": source, "to": target, "changed": False}
            allowed = machine.transitions.get(source, [])
            if target != source and target not in allowed and _reachable(machine, source, target):
                _park(call, machine, key, target, source)
            if target != source and target not in allowed:
                raise BusinessException(
                    "INVALID_TRANSITION",
                    f"{machine.entity} {key}: cannot go from {source!r} to {target!r} "
                    f"(allowed: {', '.join(allowed) or 'none'})",
                    call.state.flow.model.owner,
                )
            ok = await store.set_state(
                machine.name, key, target, expected=current, run_id=call.state.run.id, now=call.executor.clock.time()
            )
            if ok:
                await _redrive(call, machine.name, key)
                return {"machine": machine.name, "key": key, "from": source, "to": target, "changed": True}
        raise StepFailed(
            f"state of {machine.entity} {key} keeps changing; try again", error_class="retriable", reason="conflict"
        )


def _reachable(machine: Any, source: str, target: str) -> bool:
    """Whether `target` can still be reached from `source` (the event came early, not wrong)."""
    seen = {source}
    frontier = [source]
    while frontier:
        state = frontier.pop()
        for nxt in machine.transitions.get(state, []):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def _park(call: StepCall, machine: Any, key: str, target: str, source: str) -> None:
    """Wait for the entity to reach a state from which `target` is allowed, up to `park_timeout`."""
    now = call.executor.clock.time()
    parked = call.state.run.meta.get("parked") or {}
    deadline = parked.get("deadline") or now + parse_duration(machine.park_timeout)
    if now >= deadline:
        raise StepFailed(
            f"{machine.entity} {key} never reached a state allowing {target!r} (still {source!r}); parked too long",
            reason="parked_timeout",
        )
    info = {"machine": machine.name, "key": key, "target": target, "waiting_in": source, "deadline": deadline}
    raise RunSuspended(
        "waiting",
        due_at=deadline,
        reason=f"parked until {machine.entity} {key} can go to {target}",
        meta={"parked": info},
    )


async def _redrive(call: StepCall, machine: str, key: str) -> None:
    """Wake runs parked on this entity so they try their transition again."""
    from runtime.store.base import RunFilter

    store = call.executor.store
    now = call.executor.clock.time()
    for run in await store.list_runs(RunFilter(status=["waiting"], limit=1000)):
        parked = run.meta.get("parked") or {}
        if parked.get("machine") == machine and parked.get("key") == key and run.id != call.state.run.id:
            await store.update_run(run.id, {"due_at": now})


HANDLER = TransitionHandler()
STEP = StepType("transition", TransitionStep, HANDLER, order=100)
