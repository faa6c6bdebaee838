"""Execution observer of the service: step latency and retry metrics, and OpenTelemetry spans.

Spans are produced when the `otel` extra is installed (`pip install 'syncline[otel]'`) and
`SYNCLINE_OTEL=1` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) is set; the exporter is configured by the
standard OpenTelemetry environment variables. One span per step, named `<flow>/<step>`, with the run
id, correlation id, step kind and attempt as attributes; errors mark the span with the exception's
type only (its message may quote data or a value derived from a secret; the journal has it, masked).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.engine.executor import ExecutionObserver
from runtime.service.metrics import Metrics
from runtime.store.base import RunRecord


def otel_tracer(environ: Mapping[str, str] | None = None) -> Any:
    """The OpenTelemetry tracer when enabled and installed, else None."""
    env = environ if environ is not None else os.environ
    if env.get("SYNCLINE_OTEL", "").lower() not in ("1", "true", "yes") and not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("syncline")


class ServiceObserver(ExecutionObserver):
    def __init__(self, metrics: Metrics, tracer: Any = None) -> None:
        self.metrics = metrics
        self.tracer = tracer

    @contextlib.contextmanager
    def step_span(self, run: RunRecord, step_key: str, kind: str) -> Iterator[Any]:
        if self.tracer is None:
            yield None
            return
        attributes = {
            "syncline.run_id": run.id,
            "syncline.flow": run.flow,
            "syncline.step": step_key,
            "syncline.step_kind": kind,
            "syncline.correlation_id": run.correlation_id or "",
        }
        with self.tracer.start_as_current_span(
            f"{run.flow}/{step_key}", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as exc:
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def step_finished(self, run: RunRecord, kind: str, status: str, seconds: float) -> None:
        self.metrics.child(self.metrics.step_latency, run.flow, kind).observe(max(seconds, 0.0))

    def step_retried(self, run: RunRecord, step_key: str) -> None:
        self.metrics.retries.labels(run.flow, step_key).inc()

    def echo_suppressed(self, run: RunRecord, system: str) -> None:
        self.metrics.echo_suppressed.labels(run.flow, system).inc()

    def connector_called(self, system: str, operation: str, status_class: str, seconds: float) -> None:
        self.metrics.child(self.metrics.connector_latency, system, operation, status_class).observe(max(seconds, 0.0))

    def rate_limit_waited(self, system: str, seconds: float) -> None:
        self.metrics.rate_limit_waits.labels(system).inc()
        self.metrics.rate_limit_wait_seconds.labels(system).inc(max(seconds, 0.0))
