"""`foreach`: run steps once per item, `concurrency` items at a time.

Each iteration sees the item under the `as` name (default `item`), `loop` (`index`, `index0`, `first`,
`last`, `length`) and its own `steps.<id>` outputs; its steps are journaled as `<id>[<n>].<step>`, so
a resumed run skips the items already done. The output is the list of each iteration's last output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runtime.engine.errors import StepFailed
from runtime.spec.flow import ForeachStep
from runtime.step_api import ChildSteps, StepBase, StepHandler, StepType

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class ForeachHandler(StepHandler):
    """The `foreach` step kind."""

    effects = "pure"
    recomputable = True

    def children(self, step: StepBase) -> Sequence[ChildSteps]:
        assert isinstance(step, ForeachStep)
        return [ChildSteps(step.steps, ("steps",), role="loop")]

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, ForeachStep)
        return {
            "items": compiler.value(step.foreach, f"{compiled.id}.foreach"),
            "as": step.as_,
            "concurrency": step.concurrency,
            "steps": compiler.steps(list(step.steps), (*compiled.loc, "steps")),
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        items = call.render(fields["items"])
        if items is None:
            items = []
        if not isinstance(items, list):
            raise StepFailed(f"foreach needs a list, got {type(items).__name__}", reason="expression")
        call.input = {"count": len(items)}
        limit = asyncio.Semaphore(fields["concurrency"])
        results: list[Any] = [None] * len(items)

        async def one(index: int, item: Any) -> None:
            async with limit:
                scope = dict(call.scope)
                scope[fields["as"]] = item
                scope["loop"] = {
                    "index": index + 1,
                    "index0": index,
                    "first": index == 0,
                    "last": index == len(items) - 1,
                    "length": len(items),
                }
                scope["steps"] = dict(call.scope["steps"])
                prefix = f"{call.key}[{index}]."
                results[index] = await call.executor.run_steps(fields["steps"], scope, call.state, prefix=prefix)

        if fields["concurrency"] == 1:
            for index, item in enumerate(items):
                await one(index, item)
        else:
            await asyncio.gather(*(one(index, item) for index, item in enumerate(items)))
        return results


HANDLER = ForeachHandler()
STEP = StepType("foreach", ForeachStep, HANDLER, order=70)
