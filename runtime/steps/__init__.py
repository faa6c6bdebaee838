"""Step kinds: one module per kind, each with a `Handler` that compiles the step once and executes it.

A handler's `compile(step, compiler, compiled)` returns the step's compiled fields (stored on the
`CompiledStep`); `execute(call)` runs it for one run and returns the step's output. Handlers never
touch the store or the clock directly: they go through the `StepCall` they are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runtime.engine.context import StepCall
    from runtime.engine.plan import CompiledStep, StepCompiler
    from runtime.spec.flow import StepBase


class Handler(Protocol):
    kind: str

    def compile(self, step: StepBase, compiler: StepCompiler, compiled: CompiledStep) -> dict[str, Any]: ...

    async def execute(self, call: StepCall) -> Any: ...


def _handlers() -> dict[str, Handler]:
    from runtime.steps import (
        call,
        emit,
        fail,
        filter,
        foreach,
        map,
        reconcile,
        respond,
        set,
        subflow,
        switch,
        transition,
        validate,
        wait,
    )

    modules = [
        validate,
        map,
        set,
        call,
        switch,
        filter,
        foreach,
        emit,
        wait,
        transition,
        fail,
        respond,
        reconcile,
        subflow,
    ]
    return {module.HANDLER.kind: module.HANDLER for module in modules}


_HANDLERS: dict[str, Handler] = {}


def handler_for(kind: str) -> Handler:
    if not _HANDLERS:
        _HANDLERS.update(_handlers())
    return _HANDLERS[kind]
