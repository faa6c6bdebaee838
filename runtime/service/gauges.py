"""The gauges of /metrics that are read when it is scraped: queue depth, runs pending (held, parked,
retrying, waiting) and dead-letter depth per flow from the store, circuit-breaker states, and how long
ago each source (poll, queue, file) last reached its origin.

The store is asked at most once per `STORE_INTERVAL` seconds, with grouped counts over the runs not
ended, the dead letters not replayed and the outbox messages not sent (see `Store.pending_counts`,
`Store.outbox_stats`), so a scraper polling often
cannot load it; between refreshes the last values are served.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runtime.service.metrics import BREAKER_STATES, Metrics
from runtime.store.base import PENDING_STATUSES

if TYPE_CHECKING:
    from runtime.service.service import Service

STORE_INTERVAL = 5.0
PENDING_LABELS = (*PENDING_STATUSES, "parked")


class ScrapeGauges:
    def __init__(self, service: Service, store_interval: float = STORE_INTERVAL) -> None:
        self.service = service
        self.store_interval = store_interval
        self._store_read_at: float | None = None

    async def refresh(self) -> None:
        """Set the scrape-time gauges (a store that fails leaves the store gauges as they were)."""
        service = self.service
        if not service.ready:
            return
        metrics = service.metrics
        await service.queue_stats()
        now = time.monotonic()
        if self._store_read_at is None or now - self._store_read_at >= self.store_interval:
            self._store_read_at = now
            await self._store_gauges(metrics)
        self._breakers(metrics)
        self._polls(metrics)

    async def _store_gauges(self, metrics: Metrics) -> None:
        service = self.service
        pending = await service.store.pending_counts()
        depth = await service.store.dead_letter_depth()
        outbox = await service.store.outbox_stats(now=service.clock.time())
        metrics.outbox_pending.set(outbox.get("pending", 0))
        metrics.outbox_failed.set(outbox.get("failed", 0))
        metrics.outbox_oldest.set(outbox.get("oldest_age", 0))
        flows = set(service.plan.flows) | {flow for flow, _ in pending} | set(depth)
        for flow in flows:  # explicit zeros: a series that vanishes reads as "no data", not "none"
            for status in PENDING_LABELS:
                metrics.runs_pending.labels(flow, status).set(pending.get((flow, status), 0))
            metrics.dead_letter_depth.labels(flow).set(depth.get(flow, 0))

    def _breakers(self, metrics: Metrics) -> None:
        service = self.service
        executor = service.executor(service.plan)
        states = [(system, "policy", state) for system, state in executor.limits.breaker_states().items()]
        for connection, (system, state) in executor.connectors.breaker_states().items():
            states.append((system, connection, state))
        for system, scope, state in states:
            for candidate in BREAKER_STATES:
                metrics.breaker_state.labels(system, scope, candidate).set(1 if candidate == state else 0)

    def _polls(self, metrics: Metrics) -> None:
        now = self.service.clock.time()
        for host in self.service.sources:
            since = host.since
            if since is None:
                continue
            metrics.source_lag.labels(host.flow.name, host.kind.key).set(max(0.0, now - since))
            if host.kind.key == "poll":
                metrics.poll_lag.labels(host.flow.name).set(max(0.0, now - since))
