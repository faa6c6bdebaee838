"""`wait`: pause the run until a matching event arrives or the timeout passes.

The executor stores the run as `waiting` with its deadline and the newest event id it has looked
at (`checked`); the service wakes it when an event with the awaited name is emitted (and, right
after the run suspends, when one came while it was not waiting yet: `WaitDispatcher.wake_if_missed`,
runtime/service/events.py).
Each time the step runs it looks at the events given to the run and at the store's events since
`checked` for one with the awaited name whose `match` holds (`event` is in scope), so an event is
never missed because it came while the run was busy. Events from before the wait began do not
count. The matching event's data is the step's output; after the deadline, `on_timeout` decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.engine.errors import RunSuspended, StepFailed
from runtime.spec.common import parse_duration
from runtime.spec.flow import WaitStep
from runtime.step_api import StepHandler, StepType

SEARCH_PAGE, SEARCH_PAGES = 500, 20  # events read per look at most: 10,000 (the rest at the next look)

if TYPE_CHECKING:
    from runtime.engine.context import StepCall


class WaitHandler(StepHandler):
    """The `wait` step kind."""

    decides = True

    def compile(self, step: Any, compiler: Any, compiled: Any) -> dict[str, Any]:
        assert isinstance(step, WaitStep)
        spec = step.wait
        return {
            "event": spec.event,
            "timeout": parse_duration(spec.timeout),
            "on_timeout": spec.on_timeout,
            "match": compiler.expression(spec.match, f"{compiled.id}.match") if spec.match else None,
        }

    async def execute(self, call: StepCall) -> Any:
        fields = call.step.fields
        waits = call.state.run.meta.get("waits", {})
        mine = waits.get(call.key)
        now = call.executor.clock.time()
        for event in call.state.delivered_events:
            if self._matches(call, event.get("name"), event.get("data")):
                return event.get("data")
        store = call.executor.store
        if mine is None or mine.get("checked") is None:  # the wait begins: events before it do not count
            checked = await store.last_event_id()
        else:  # events emitted since the last look (one may have come while the run was not waiting)
            checked = int(mine["checked"])
            for _page in range(SEARCH_PAGES):
                events = await store.events_after(checked, limit=SEARCH_PAGE)
                for record in events:
                    if self._matches(call, record.name, record.data):
                        return record.data
                if not events:
                    break
                checked = events[-1].id
        if mine is not None and now >= mine["deadline"]:
            if fields["on_timeout"] == "continue":
                return None
            raise StepFailed(
                f"no {fields['event']!r} event within the timeout", reason="wait_timeout", error_class="fatal"
            )
        deadline = mine["deadline"] if mine is not None else now + fields["timeout"]
        wait = {"event": fields["event"], "deadline": deadline, "checked": checked}
        raise RunSuspended(
            "waiting",
            due_at=deadline,
            reason=f"waiting for event {fields['event']!r}",
            meta={"waits": {**waits, call.key: wait}},
        )

    @staticmethod
    def _matches(call: StepCall, name: Any, data: Any) -> bool:
        from runtime.engine.context import truthy

        fields = call.step.fields
        if name != fields["event"]:
            return False
        return fields["match"] is None or truthy(call.render(fields["match"], {"event": data}))


HANDLER = WaitHandler()
STEP = StepType("wait", WaitStep, HANDLER, order=90)
