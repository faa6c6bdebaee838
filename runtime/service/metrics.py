"""Prometheus metrics of one service instance (a registry value, not the global default registry).

Counters and histograms are updated as things happen; the gauges read from the store (pending runs,
dead-letter depth), the circuit breakers and the pollers are set when /metrics is scraped
(`runtime/service/gauges.py`). Counters have no `_created` series: they would read like counts.
Every metric is listed in docs/operations.md.
"""

from __future__ import annotations

import platform
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from runtime import __version__

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BREAKER_STATES = ("closed", "half_open", "open")


class Metrics:
    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # `x_created` reads like a count
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge("syncline_build_info", "Always 1: the running version", ["version", "python"], registry=r).labels(
            __version__, platform.python_version()
        ).set(1)
        self.runs = Counter(
            "syncline_runs_total", "Runs that ended, by flow and final status", ["flow", "status"], registry=r
        )
        self.runs_accepted = Counter(
            "syncline_runs_accepted_total", "Runs accepted, by flow and trigger", ["flow", "trigger"], registry=r
        )
        self.step_latency = Histogram(
            "syncline_step_duration_seconds",
            "Step execution time",
            ["flow", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.run_latency = Histogram(
            "syncline_run_duration_seconds",
            "Run execution time (one execution)",
            ["flow"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("syncline_queue_depth", "Runs waiting to be executed now", registry=r)
        self.queue_oldest = Gauge("syncline_queue_oldest_age_seconds", "Age of the oldest runnable run", registry=r)
        self.retries = Counter("syncline_step_retries_total", "Step attempts retried", ["flow", "step"], registry=r)
        self.dead_letters = Counter(
            "syncline_dead_letters_total", "Runs sent to the dead-letter queue", ["flow"], registry=r
        )
        self.webhook_rejections = Counter(
            "syncline_webhook_rejections_total", "Webhook requests refused", ["flow", "reason"], registry=r
        )
        self.connector_calls = Counter(
            "syncline_connector_calls_total",
            "Connector calls by system and outcome",
            ["system", "operation", "outcome"],
            registry=r,
        )
        self.echo_suppressed = Counter(
            "syncline_echo_suppressed_total", "Writes suppressed as echoes", ["flow", "system"], registry=r
        )
        self.reloads = Counter("syncline_reloads_total", "Project reloads by outcome", ["outcome"], registry=r)
        self.store_errors = Counter("syncline_store_errors_total", "Store operations that failed", registry=r)
        self.connector_latency = Histogram(
            "syncline_connector_call_duration_seconds",
            "Connector call time by system, operation and status class (2xx..5xx, ok, or the failure: "
            "timeout, connect, ...)",
            ["system", "operation", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhook_latency = Histogram(
            "syncline_webhook_request_duration_seconds",
            "Webhook request time, from the request to the answer sent, by flow and status class",
            ["flow", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "syncline_rate_limit_waits_total", "Calls that waited for a Policy rate limit", ["system"], registry=r
        )
        self.rate_limit_wait_seconds = Counter(
            "syncline_rate_limit_wait_seconds_total",
            "Time calls waited for a Policy rate limit",
            ["system"],
            registry=r,
        )
        self.schedule_lag = Gauge(
            "syncline_schedule_lag_seconds",
            "How late the last schedule fire was accepted after its scheduled time",
            ["flow"],
            registry=r,
        )
        self.outbox_sent = Counter(
            "syncline_outbox_sent_total",
            "Outbox messages (effect: publish calls) sent and confirmed by their broker, by operation",
            ["operation"],
            registry=r,
        )
        self.outbox_failures = Counter(
            "syncline_outbox_failures_total",
            "Outbox send attempts that failed (each is retried with backoff until the last attempt), by operation",
            ["operation"],
            registry=r,
        )
        # set when /metrics is scraped (runtime/service/gauges.py)
        self.outbox_pending = Gauge(
            "syncline_outbox_pending", "Outbox messages committed and not sent yet (due now or later)", registry=r
        )
        self.outbox_failed = Gauge(
            "syncline_outbox_failed", "Outbox messages given up on after their last attempt", registry=r
        )
        self.outbox_oldest = Gauge(
            "syncline_outbox_oldest_age_seconds",
            "Seconds since the oldest outbox message not sent yet was committed",
            registry=r,
        )
        self.runs_pending = Gauge(
            "syncline_runs_pending",
            "Runs not ended that wait: held (approval), parked (state machine), retrying, waiting",
            ["flow", "status"],
            registry=r,
        )
        self.dead_letter_depth = Gauge(
            "syncline_dead_letter_depth", "Dead letters not replayed yet", ["flow"], registry=r
        )
        self.breaker_state = Gauge(
            "syncline_circuit_breaker_state",
            "1 for the state a circuit breaker is in (closed, half_open, open), 0 for the others; scope is "
            "policy (a Policy rule) or the connection's name (its own circuit_breaker)",
            ["system", "scope", "state"],
            registry=r,
        )
        self.poll_lag = Gauge(
            "syncline_poll_lag_seconds",
            "Seconds since the poll trigger last succeeded (since it started, before its first success)",
            ["flow"],
            registry=r,
        )
        self.source_lag = Gauge(
            "syncline_source_lag_seconds",
            "Seconds since a flow's source (poll, queue, file, ...) last reached its origin",
            ["flow", "kind"],
            registry=r,
        )
        self.source_delay = Gauge(
            "syncline_source_delay_seconds",
            "How late a flow's source took its last event against the origin's own time (a schedule's fire time)",
            ["flow", "kind"],
            registry=r,
        )
        self.source_events = Counter(
            "syncline_source_events_total",
            "What the sources of flows counted: accepted events, dead-lettered ones by reason, restarts",
            ["flow", "kind", "name"],
            registry=r,
        )

        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus-client checks and locks on every
        `labels` call, several times per request on the hot path (label values are bounded by
        the project: flows, step kinds, statuses, operations)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
