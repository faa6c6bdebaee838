"""The step plugin interface: what a step kind declares so the core can check, compile, run, resume
and draw it without knowing it by name.

A step *kind* is one `StepType` value exported by a plugin module and named in the `syncline.steps`
entry-point group (the built-in steps are registered the same way, in Syncline's own pyproject.toml).
It holds:

- `key`: the one key that marks a step of this kind in a flow (`call:`, `foreach:`, `uppercase:`);
- `model`: the pydantic model of the step, extending `StepBase` (the keys every step takes); the flow
  JSON Schema, docs/reference.md and validate's error positions come from it;
- `handler`: a `StepHandler` declaring what the core needs to know and doing the work.

What a handler declares (each has a default in `StepHandler`, so a simple step overrides little):

- `effects`: `"pure"` (no effect outside the run: its journal entry need not be written before the next
  step) or `"side_effects"` (the run's earlier steps are journaled before it runs);
- `recomputable`: a pure step computed again on resume when its journaled output had secrets masked;
- `calls_operation`: it calls one operation with its own parameters, so the project's `defaults.retry`
  and `defaults.timeout`, its idempotency key and the call policies apply to it;
- `decides`: it may branch, end or suspend the run on data (a way out of a `goto` loop);
- `ends_run`: nothing follows it in the flow graph;
- `condition_keys`: keys of the step holding a condition (written with or without braces);
- `branch_id`: for numbered branch lists under the step's own key (`switch: [{steps: ...}]`), the word
  their index takes in derived step ids (`case` → `s0_case1_s0`);
- `children(step)`: the nested step lists it runs (branches or a loop body), with their positions;
- `references(step)`: the operations, mappings, schemas, state machines, flows and events it names, so
  validate checks them and ownership, policies and `explain` see its calls;
- `rendered_first(step)`: what it renders before anything else (to prove a `goto` loop endless);
- `jsonpaths(step)`: fields holding JSONPath (validate checks their syntax);
- `check(step, step_id)`: extra static findings (a diagnostic code, message and position);
- `restore(output, resume)`: how a journaled output is restored when a run resumes;
- `graph_label(step)`: the detail shown after the kind in flow graphs;
- `compile(step, compiler, compiled)` and `execute(call)`: compile once per load, run once per run.

Loading a step kind must not import engine, store or service code at module level (the flow model
loads every step kind; runtime/spec/ stays free of them): import such code inside `execute`.

Positions (`Loc`) in `ChildSteps`, `Reference` and `Finding` are relative to the step, as key and
index parts of the flow file (`("switch", 0, "steps")`).

`STEP_API_VERSION` is versioned with the package: it changes when a declaration is added or changes
meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn, Protocol

from runtime.spec.step_base import StepBase

__all__ = [
    "STEP_API_VERSION",
    "ChildSteps",
    "Effects",
    "Finding",
    "Loc",
    "Reference",
    "ReferenceKind",
    "Resume",
    "StepBase",
    "StepHandler",
    "StepType",
]

STEP_API_VERSION = 1

Effects = Literal["pure", "side_effects"]
Loc = tuple[str | int, ...]
ReferenceKind = Literal["operation", "mapping", "schema", "state_machine", "state", "flow", "event"]


@dataclass(frozen=True)
class ChildSteps:
    """One list of steps nested in a step: a branch (run at most once) or a loop body (run per item)."""

    steps: Sequence[StepBase]
    at: Loc  # where the list sits, relative to the step (`("steps",)`, `("switch", 0, "steps")`)
    role: Literal["branch", "loop"] = "branch"
    label: str = ""  # a branch's edge label in flow graphs ("case 1", "else")
    default: bool = False  # a branch taken when no other is: no path goes past the step without a branch


@dataclass(frozen=True)
class Reference:
    """A name a step uses that must resolve to something else in the project.

    - `operation`: `connection.operation`; `params` are the parameters the step sends (validate reads
      the fields a write holds from them); `direct=False` for an operation the step reads on its own
      terms (a `reconcile` side: no retry/timeout/idempotency policy applies to it);
    - `mapping` (a Mapping name or a template file), `schema` (a JSON Schema file), `flow`;
    - `state_machine`, and `state` with its `machine` (checked only when that machine exists);
    - `event`: an event the step emits (flows triggered by it are then known to have a source).
    """

    kind: ReferenceKind
    name: str
    at: Loc
    params: Mapping[str, Any] | None = None
    direct: bool = True
    machine: str | None = None


@dataclass(frozen=True)
class Finding:
    """A problem a handler's static `check` reports (`code` is a diagnostic code of runtime/codes.py)."""

    code: str
    message: str
    at: Loc
    hint: str | None = None


class Resume(Protocol):
    """What `restore` may do with the run when a journaled step output is restored."""

    def set_vars(self, values: Mapping[str, Any]) -> None: ...

    def set_response(self, response: dict[str, Any]) -> None: ...

    def stop_filtered(self) -> NoReturn: ...


class StepHandler:
    """Base of every step handler: the declarations' defaults (a plain step with side effects and no
    children or references). Subclasses override what applies and implement `compile` and `execute`."""

    effects: ClassVar[Effects] = "side_effects"
    recomputable: ClassVar[bool] = False
    calls_operation: ClassVar[bool] = False
    decides: ClassVar[bool] = False
    ends_run: ClassVar[bool] = False
    condition_keys: ClassVar[frozenset[str]] = frozenset()
    branch_id: ClassVar[str] = ""

    def children(self, step: StepBase) -> Sequence[ChildSteps]:
        return ()

    def references(self, step: StepBase) -> Sequence[Reference]:
        return ()

    def rendered_first(self, step: StepBase) -> Any:
        """The value the step renders before it does anything else (None: nothing known)."""
        return None

    def succeeds_when_constant(self, step: StepBase) -> bool:
        """Whether the step cannot fail once what it renders first is constant and evaluates."""
        return False

    def jsonpaths(self, step: StepBase) -> Sequence[tuple[Loc, str]]:
        """Fields holding RFC 9535 JSONPath, with their positions (validate checks their syntax)."""
        return ()

    def check(self, step: StepBase, step_id: str) -> Sequence[Finding]:
        """Extra static findings about one step (`step_id` is its effective id, for messages)."""
        return ()

    def restore(self, output: Any, resume: Resume) -> None:
        """Apply a journaled output to the run again (the output itself is put in `steps.<id>`)."""

    def graph_label(self, step: StepBase) -> str:
        return ""

    # `compiler` is a runtime.engine.plan.StepCompiler, `compiled` the step's CompiledStep and `call` a
    # runtime.engine.context.StepCall; typed loosely here so that loading the step kinds (the flow model
    # does, from runtime/spec/) imports no engine code

    def compile(self, step: StepBase, compiler: Any, compiled: Any) -> dict[str, Any]:
        """Compile the step once per project load; returns the fields `execute` reads."""
        raise TypeError(f"step handler {type(self).__name__} does not define compile()")

    async def execute(self, call: Any) -> Any:
        """Run the step for one run and return its output."""
        raise TypeError(f"step handler {type(self).__name__} does not define execute()")


@dataclass(frozen=True)
class StepType:
    """A step kind: its key, model and handler. `order` places it in docs and messages (built-ins
    use 10-140; plugins default after them, by key)."""

    key: str
    model: type[StepBase]
    handler: StepHandler
    order: int = 1000
