"""Step metrics and OpenTelemetry spans from the service's execution observer."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime.engine.plan import Plan
from runtime.service.metrics import Metrics
from runtime.service.observe import ServiceObserver, otel_tracer
from tests.engine.conftest import Harness


async def test_spans_per_step_and_step_metrics(
    make_plan: Callable[[str], Plan], harness: Callable[..., Harness]
) -> None:
    plan = make_plan("""
kind: Flow
name: f
trigger: {manual: {}}
steps:
  - id: a
    call: erp.create
    with: {body: 1}
    retry: {attempts: 2, initial: 1s, on: [5xx]}
  - id: b
    set: {x: 1}
""")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = Metrics()
    h = harness(plan, {"erp.create": {"sequence": [{"error": {"status": 503}}, {"output": {}}]}})
    h.executor.observer = ServiceObserver(metrics, provider.get_tracer("test"))
    await h.store.open()
    result = await h.executor.run_flow("f", {})
    assert result.status == "succeeded"
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["f/a", "f/a", "f/b"]
    assert exporter.get_finished_spans()[0].attributes["syncline.run_id"] == result.run.id
    text = metrics.render().decode()
    assert 'syncline_step_retries_total{flow="f",step="a"} 1.0' in text
    assert 'syncline_step_duration_seconds_count{flow="f",kind="call"} 2.0' in text


def test_tracing_is_off_unless_enabled() -> None:
    assert otel_tracer({}) is None
    assert otel_tracer({"SYNCLINE_OTEL": "1"}) is not None
