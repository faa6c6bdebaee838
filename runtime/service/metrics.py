"""Prometheus metrics of one service instance (a registry value, not the global default registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
