"""Running `kind: FlowTest` documents: a flow on a given input, with mocked operations, a test clock,
an in-memory store and the test's own secrets; then each expectation is checked and every failure
is described as a readable difference."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.clock import FakeClock
from runtime.compare import differences
from runtime.engine.connectors import ConnectorPool, MockedOperations
from runtime.engine.context import CallLog
from runtime.engine.executor import Executor, RunResult
from runtime.engine.plan import Plan
from runtime.errors import Diagnostic, ExpressionError, SynclineError
from runtime.expr import dumps
from runtime.secrets import SecretStore
from runtime.spec.documents import ParsedDocument
from runtime.spec.flow import WebhookTrigger
from runtime.spec.flowtest import Expect, ExpectedCall, FlowTest, InputFile, WebhookInput
from runtime.spec.inputs import read_input_file
from runtime.store.memory import MemoryStore
from runtime.triggers.webhook_auth import SIGNED_TYPES, sign, verify


@dataclass
class FlowTestOutcome:
    name: str
    doc: ParsedDocument
    failures: list[str] = field(default_factory=list)
    result: RunResult | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def diagnostic(self) -> Diagnostic:
        return self.doc.diag("SL034", f"flow test {self.name!r} failed: " + "; ".join(self.failures), ("expect",))


def _load_input(plan: Plan, spec: Any) -> Any:
    if isinstance(spec, InputFile):
        return read_input_file(plan.root, spec.file)
    return spec


async def run_flowtest(plan: Plan, doc: ParsedDocument) -> FlowTestOutcome:
    test: FlowTest = doc.model
    outcome = FlowTestOutcome(test.name, doc)
    clock = FakeClock(test.clock)
    secrets = SecretStore(test.secrets, environ={})
    env_values: dict[str, str] = {}
    mocks = MockedOperations(test.mocks, clock, only_mocks=True)
    store = MemoryStore()
    await store.open()
    executor = Executor(
        plan,
        store,
        clock=clock,
        secrets=secrets,
        env=env_values.get,
        connectors=ConnectorPool(plan, secrets, env_values.get, mocks=mocks),
    )
    flow = plan.flow(test.flow)
    try:
        payload = _load_input(plan, test.input)
        headers: dict[str, str] = {}
        if isinstance(payload, WebhookInput):
            rejected = _webhook(plan, flow.model, payload, clock, secrets)
            headers = dict(payload.webhook.headers)
            if rejected is not None:
                outcome.failures.extend(_check_rejected(test.expect, rejected))
                return outcome
            payload = payload.webhook.body
        calls = []
        result = None
        for _ in range(test.repeat):
            new = executor.new_run(flow, payload, trigger="test", headers=headers)
            new.meta["vars"] = dict(test.vars)
            created = await store.create_run(new, now=clock.time())
            if created.created or created.run.status == "queued":
                result = await executor.execute(created.run)
                calls.extend(result.calls)
            else:
                result = RunResult(created.run, created.run.status, created.run.output, created.run.error)
        assert result is not None
        result.calls = calls
        result.journal = await store.journal(result.run.id)
        outcome.result = result
        outcome.failures.extend(check_expectations(test.expect, result))
    except (SynclineError, ExpressionError) as exc:
        outcome.failures.append(f"the test could not run: {secrets.redact(str(exc))}")
    except Exception as exc:  # a defect, reported as the test's failure: `syncline test` shows no traceback
        detail = secrets.redact(f"{type(exc).__name__}: {exc}")
        outcome.failures.append(f"the test could not run (internal error, please report it): {detail}")
    finally:
        await executor.aclose()
        await store.close()
    return outcome


def _webhook(plan: Plan, flow: Any, spec: WebhookInput, clock: FakeClock, secrets: SecretStore) -> str | None:
    trigger = flow.trigger
    if not isinstance(trigger, WebhookTrigger):
        return None
    body = dumps(spec.webhook.body).encode()
    auth = trigger.webhook.auth
    engine = plan.engine

    def resolve(template: str | None) -> str | None:
        if template is None:
            return None
        from runtime.expr import ENV_KEY, SECRETS_KEY

        value = engine.compile(template).render({SECRETS_KEY: secrets.resolve, ENV_KEY: lambda name: None})
        return None if value is None else str(value)

    headers = dict(spec.webhook.headers)
    if spec.webhook.sign and auth is not None and auth.type in SIGNED_TYPES:
        secret = resolve(auth.secret) or ""
        headers.update(sign(auth, secret, body, int(clock.time())))
    failure = verify(auth, headers, body, now=clock.time(), resolve=resolve)
    return None if failure is None else failure.reason


def _check_rejected(expect: Expect, reason: str) -> list[str]:
    if expect.response is not None and expect.response.get("status") == 401:
        return []
    return [f"the webhook was rejected ({reason}); expect `response: {{status: 401}}` if that is intended"]


def check_expectations(expect: Expect, result: RunResult) -> list[str]:
    failures: list[str] = []

    def diff(wanted: Any, actual: Any) -> list[str]:
        return differences(wanted, actual, subset=True, exact=expect.exact)

    if expect.status is not None and result.status != expect.status:
        detail = f" ({json.dumps(result.error, default=str)})" if result.error else ""
        failures.append(f"status: expected {expect.status}, got {result.status}{detail}")
    if expect.output is not None:
        failures.extend(f"output {d}" for d in diff(expect.output, result.output))
    outputs = {record.step_key: record.output for record in result.journal}
    for step, wanted in expect.steps.items():
        if step not in outputs:
            failures.append(f"step {step!r} did not run")
        else:
            failures.extend(f"step {step}: {d}" for d in diff(wanted, outputs[step]))
    made = [c for c in result.calls if c.status in ("ok", "error", "planned")]
    for wanted_call in expect.calls:
        failures.extend(_call_failures(wanted_call, made, diff))
    for operation in expect.not_called:
        count = sum(1 for c in made if c.operation == operation)
        if count:
            failures.append(f"{operation} was called {count} time(s) but must not be")
    if expect.dead_letter is not None:
        if result.status != "dead_lettered":
            failures.append(f"dead letter: the run is {result.status}, not dead_lettered")
        else:
            failures.extend(f"dead letter {d}" for d in diff(expect.dead_letter, result.error or {}))
    if expect.exception is not None:
        failures.extend(f"exception {d}" for d in diff(expect.exception, result.error or {}))
    for wanted_event in expect.emitted:
        found = [e for e in result.emitted if e.name == wanted_event.get("event")]
        if not found:
            failures.append(f"event {wanted_event.get('event')!r} was not emitted")
        elif "data" in wanted_event and all(diff(wanted_event["data"], e.data) for e in found):
            failures.append(
                f"event {wanted_event.get('event')!r} data: " + "; ".join(diff(wanted_event["data"], found[0].data))
            )
    if expect.response is not None:
        failures.extend(f"response {d}" for d in diff(expect.response, result.response or {}))
    return failures


def _call_failures(wanted: ExpectedCall, made: list[CallLog], diff: Callable[[Any, Any], list[str]]) -> list[str]:
    """What is wrong with the calls made against one expected call; when none has the expected
    parameters, the closest call of that operation with a field-by-field difference."""
    same_op = [c for c in made if c.operation == wanted.operation]
    matching = [c for c in same_op if wanted.params is None or not diff(wanted.params, c.params)]
    times = wanted.times
    if (times is None and matching) or len(matching) == times:
        return []
    if not same_op:
        others = sorted({c.operation for c in made})
        made_text = f" (calls made: {', '.join(others)})" if others else " (no calls were made)"
        expected = "" if times is None else f" expected {times} call{'s' if times != 1 else ''}, got 0;"
        return [f"call {wanted.operation}:{expected} not called{made_text}"]
    if times is not None:
        head = f"call {wanted.operation}: expected {times} call{'s' if times != 1 else ''}"
        head += " with these params" if wanted.params is not None else ""
        head += f", got {len(matching)}"
    else:
        head = f"call {wanted.operation}: no call with these params"
    if wanted.params is None or len(matching) > (times or 0):
        return [head]
    unmatched = [c for c in same_op if c not in matching]
    if not unmatched:
        return [head]
    closest = min(unmatched, key=lambda c: len(diff(wanted.params, c.params)))
    index = same_op.index(closest) + 1
    count = f"{len(same_op)} calls" if len(same_op) != 1 else "1 call"
    return [
        f"{head} ({count} to {wanted.operation}; the closest, #{index} from step {closest.step!r}, differs: "
        + "; ".join(diff(wanted.params, closest.params))
        + ")"
    ]


def project_path(plan: Plan, relative: str) -> Path:
    return plan.root / relative
