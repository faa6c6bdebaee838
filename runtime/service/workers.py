"""Workers: claim runnable runs from the store with a lease, execute them, keep the lease alive.

A run whose worker died is claimable again once its lease expires and resumes from its journal.
Workers wake on new work immediately (intake sets an event) and otherwise poll the store, so due
retries, timers and runs accepted by other nodes are picked up too. On shutdown a worker finishes
its current run within the grace period; a run still going after it is released to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from runtime.service.logs import bind
from runtime.store.base import RunRecord, StoreError

if TYPE_CHECKING:
    from runtime.service.service import Service

log = logging.getLogger("syncline.workers")


class LeaseTimer:
    """Renews a run's lease every `lease / 3` seconds while it executes: a timer rather than a task
    per run, since most runs end long before the first renewal is due."""

    def __init__(self, service: Service, run_id: str, worker: str) -> None:
        self._service = service
        self._run_id = run_id
        self._worker = worker
        self._loop = asyncio.get_running_loop()
        self._renewals: set[asyncio.Task[None]] = set()
        self._handle = self._loop.call_later(service.lease / 3, self._due)

    def _due(self) -> None:
        task = self._loop.create_task(self._renew())
        self._renewals.add(task)
        task.add_done_callback(self._renewals.discard)
        self._handle = self._loop.call_later(self._service.lease / 3, self._due)

    async def _renew(self) -> None:
        service = self._service
        try:
            await service.store.renew(self._run_id, self._worker, now=service.clock.time(), lease=service.lease)
        except StoreError:
            service.metrics.store_errors.inc()

    def cancel(self) -> None:
        self._handle.cancel()
        for task in self._renewals:
            task.cancel()


class WorkerPool:
    def __init__(self, service: Service, count: int, *, poll_interval: float = 0.25) -> None:
        self.service = service
        self.count = count
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.current: dict[str, tuple[RunRecord, str]] = {}  # run id -> (run, worker holding its lease)

    def start(self) -> None:
        for index in range(self.count):
            self._tasks.append(asyncio.create_task(self._loop(f"{self.service.node_id}/w{index}")))

    def notify(self) -> None:
        self.wake.set()

    async def _loop(self, worker: str) -> None:
        service = self.service
        while not self._stopping:
            try:
                claimed = await self.work_once(worker)
            except StoreError as exc:
                service.metrics.store_errors.inc()
                log.warning("claim failed: %s", exc)
                await asyncio.sleep(min(self.poll_interval * 8, 2.0))
                continue
            if not claimed:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_interval)

    async def work_once(self, worker: str) -> int:
        """Claim the oldest due run (if any) for `worker` and execute it; how many runs were claimed.
        A failed claim raises `StoreError`; a run's own failures end in its record, never here."""
        service = self.service
        runs = await service.store.claim(worker, now=service.clock.time(), lease=service.lease, limit=1)
        for run in runs:
            await self.execute(run, worker)
        return len(runs)

    async def execute(self, run: RunRecord, worker: str) -> None:
        service = self.service
        self.current[run.id] = (run, worker)
        token = bind(run_id=run.id, flow=run.flow, correlation_id=run.correlation_id)
        lease = LeaseTimer(service, run.id, worker)
        try:
            result = await service.execute(run)
            if result.status in ("failed", "dead_lettered"):
                reason = (result.error or {}).get("message") or (result.error or {}).get("reason") or ""
                log.warning("run %s of flow %s ended %s: %s", run.id, run.flow, result.status, reason)
        except StoreError as exc:
            service.metrics.store_errors.inc()
            log.warning("store failed while executing run %s: %s (it resumes after its lease)", run.id, exc)
        except Exception:
            log.exception("run %s crashed the worker; it resumes after its lease", run.id)
        finally:
            lease.cancel()
            self.current.pop(run.id, None)
            from runtime.service.logs import run_context

            run_context.reset(token)

    async def stop(self, grace: float) -> None:
        """Stop claiming; let running runs finish within `grace` seconds, then release the rest."""
        self._stopping = True
        self.wake.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=grace)
        unfinished = dict(self.current)  # cancelling a worker removes its run from `current`
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for run_id, (run, worker) in unfinished.items():
            # only while this worker still holds the lease: a run that ended meanwhile stays as it is
            with contextlib.suppress(StoreError):
                await self.service.store.release(run_id, worker)
                log.info("released run %s of flow %s at shutdown", run_id, run.flow)
