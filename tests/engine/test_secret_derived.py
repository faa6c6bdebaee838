"""The executor with values derived from a secret (issue 8.3): the journal, the run's error, the
exception notice and the step's span hold them masked; a connector call gets the real value, also
after a resume, when the pure step that computed it runs again instead of restoring its masked output."""

from __future__ import annotations

import base64
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from runtime.engine.plan import Plan
from runtime.service.metrics import Metrics
from runtime.service.observe import ServiceObserver
from runtime.spec.flowtest import Mock
from tests.engine.conftest import Harness

Build = Callable[[str], Plan]
CANARY = "canary-pw-31d9e0"
BASIC = base64.b64encode(f"user:{CANARY}".encode()).decode()
FORMS = [CANARY, CANARY.upper(), BASIC, " ".join(CANARY), CANARY[3:11]]


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


async def test_a_resumed_run_recomputes_the_derived_value_it_sends(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: auth
    set: {header: "{{ ('user:' ~ secret('PW')) | b64encode }}", shout: "{{ secret('PW') | upper }}"}
  - id: send
    call: erp.notify
    with: {auth: "Basic {{ vars.header }}", id: "{{ input.id }}"}
    retry: {attempts: 3, initial: 5s}
""")
    h = harness(plan, {"erp.notify": {"error": {"reason": "connect"}}}, secrets={"PW": CANARY}, inline_retry_limit=0.0)
    await h.store.open()
    created = await h.executor.submit("f", {"id": "A-1"})
    first = await h.executor.execute(created.run)
    assert first.status == "retrying"
    assert first.calls[0].params["auth"] == f"Basic {BASIC}"  # the connector got the real value
    h.mocks.mocks["erp.notify"] = Mock.model_validate({"output": {"sent": True}})
    stored = await h.store.get_run(created.run.id)
    assert stored is not None
    second = await h.executor.execute(stored)
    assert second.status == "succeeded"
    assert second.calls[-1].params == {"auth": f"Basic {BASIC}", "id": "A-1"}  # recomputed, not '***'
    journal = await h.store.journal(created.run.id)
    dump = repr([(r.step_key, r.input, r.output, r.error) for r in journal]) + repr(await h.store.get_run(stored.id))
    assert leaks(dump) == [], dump
    auth = [r for r in journal if r.step_key == "auth"][-1]
    assert auth.output == {"header": "***", "shout": "***"}


async def test_a_business_exception_built_from_a_secret_is_masked(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
on_exception: {call: erp.notify, with: {text: "{{ exception.message }}"}}
steps:
  - id: refuse
    fail:
      code: AUTH
      message: "login {{ secret('PW') | upper }} / {{ secret('PW') | list | join(' ') }} refused"
""")
    h = harness(plan, {"erp.notify": {"output": {"ok": True}}}, secrets={"PW": CANARY})
    await h.store.open()
    result = await h.executor.run_flow("f", {})
    assert result.status == "exception"
    journal = await h.store.journal(result.run.id)
    dump = repr(result.error) + repr(journal) + repr(await h.store.get_run(result.run.id))
    dump += repr([c.params for c in result.calls])  # the notice to people is masked too
    assert leaks(dump) == [], dump
    assert result.error is not None and result.error["code"] == "AUTH" and result.error["message"] == "***"


async def test_a_span_of_a_failed_step_carries_the_exception_type_only(
    make_plan: Build, harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: refuse
    fail: {code: AUTH, message: "login {{ (secret('PW') | upper) }} refused"}
""")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    h = harness(plan, {}, secrets={"PW": CANARY})
    h.executor.observer = ServiceObserver(Metrics(), provider.get_tracer("test"))
    await h.store.open()
    assert (await h.executor.run_flow("f", {})).status == "exception"
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "BusinessException"
    shown = repr(span.status) + repr(span.events) + repr(dict(span.attributes or {}))
    assert leaks(shown) == [], shown
