"""Workers: claim due runs from the store in batches, execute up to a limit of them at once, keep
their leases alive.

One dispatcher task per node claims what the node has room for — up to `limit` runs in flight,
at most `CLAIM_BATCH` in one store transaction — and starts a task per claimed run. While there is
a backlog (the last claim filled its batch) it claims again once an eighth of the slots are free,
so a busy node claims several runs per transaction rather than one per finished run; it also
claims when intake says there is new work (`notify`), and otherwise polls the store every `poll_interval`, so
due retries, timers and runs accepted by other nodes are picked up too. A wake-up that comes while
a claim is under way is kept (the event is cleared before claiming), so new work never waits for
the poll. Each claim leases its runs to an owner of its own (`<node>/c<n>`), so a run this node
still executes is never confused with a later claim of the same run — and so that after a claim
whose answer was lost (committed, then the connection dropped) its runs can be given back at once
(`Store.release_claim`) instead of waiting for their leases and counting a stall.

Intake hands runs over directly (`reserve`, then `adopt`): a webhook delivery or a source's event
that becomes a new run while the node has room is committed already leased to one of this node's
owners (status `running`), and starts as soon as it is committed: no claim transaction, no wait for the
dispatcher. Runs with an ordering key, and everything beyond the limit, go through the queue.

A run whose node died is claimable again once its lease expires and resumes from its journal. On
shutdown the node stops claiming, lets running runs finish within the grace period and releases
the rest to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from runtime.service.logs import bind, run_context
from runtime.store.base import RunRecord, StoreError

if TYPE_CHECKING:
    from runtime.service.service import Service

log = logging.getLogger("syncline.workers")

CLAIM_BATCH = 32  # the most runs one claim (one store transaction) takes
DEFAULT_CONCURRENCY = 64  # runs in flight per node (`syncline serve --concurrency`)


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
    """Executes claimed runs, at most `limit` at once on this node (`syncline serve --concurrency`)."""

    def __init__(self, service: Service, limit: int, *, poll_interval: float = 0.25, batch: int = CLAIM_BATCH) -> None:
        self.service = service
        self.limit = max(0, limit)
        self.batch = max(1, batch)
        # with a backlog (the last claim was full), claim when this many slots are free
        self._refill = max(1, min(self.batch, self.limit // 8))
        self._full = False
        self.poll_interval = poll_interval
        self.wake = asyncio.Event()  # new work may be due (intake, events, replays)
        self._freed = asyncio.Event()  # a run finished: room for another
        self._dispatcher: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._owners = itertools.count()
        self._stopping = False
        self._returning: set[asyncio.Task[None]] = set()  # runs given back to the queue (`_give_back`)
        self._reserved = 0  # slots promised to intake hand-overs (`reserve`) not yet adopted
        self.current: dict[str, tuple[RunRecord, str]] = {}  # run id -> (run, owner of its lease)

    @property
    def count(self) -> int:
        """The limit of runs in flight (the former number of worker tasks)."""
        return self.limit

    def start(self) -> None:
        if self.limit > 0 and self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch())

    def notify(self) -> None:
        self.wake.set()

    def owner(self) -> str:
        """A lease owner for one claim: the node's id and a number of its own."""
        return f"{self.service.node_id}/c{next(self._owners)}"

    async def _dispatch(self) -> None:
        service = self.service
        while not self._stopping:
            room = self._room()
            if room < self._refill and (room <= 0 or self._full):
                # busy with a backlog: claim again once a few runs have finished, not after each one
                self._freed.clear()
                await self._freed.wait()
                continue
            wanted = min(room, self.batch)
            owner = self.owner()
            self.wake.clear()  # before the claim: a notify while it runs is not lost
            try:
                runs = await service.store.claim(owner, now=service.clock.time(), lease=service.lease, limit=wanted)
            except StoreError as exc:
                service.metrics.store_errors.inc()
                log.warning("claim failed: %s", exc)
                self._give_back_claim(owner)
                await self._idle(min(self.poll_interval * 8, 2.0))
                continue
            # intake may have handed runs over while the claim was under way: what no longer fits goes
            # back to the queue (a released run is claimed again as if it had waited; no stall counted)
            fits = max(0, self._room())
            for run in runs[:fits]:
                self._start(run, owner)
            for run in runs[fits:]:
                self._give_back(run, owner)
            self._full = len(runs) == wanted
            if not self._full:  # nothing more is due now: until new work, a finished run or the poll
                await self._idle(self.poll_interval)

    async def _idle(self, seconds: float) -> None:
        if self._stopping or self.wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)

    @property
    def free(self) -> int:
        """Run slots free now (0 when the pool runs nothing: triggers only, or stopping)."""
        if self._dispatcher is None or self._stopping:
            return 0
        return max(0, self._room())

    def _room(self) -> int:
        """Slots neither running a run nor promised to one (0 or less when full)."""
        return self.limit - len(self._runs) - self._reserved

    async def wait_for_room(self, patience: float) -> None:
        """Return once a run slot is free, or after `patience` seconds (at once when the pool runs
        nothing: intake then only feeds the queue)."""
        if self._dispatcher is None or self._stopping or self.free > 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while self.free == 0 and not self._stopping and self._dispatcher is not None:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), left)

    @property
    def reserved(self) -> int:
        """Slots promised to intake hand-overs whose runs are not committed yet."""
        return self._reserved

    def reserve(self) -> str | None:
        """A slot for a run that intake is about to commit already leased to this node: the lease
        owner to create it with, or None when the node has no room (or is stopping). Each reserved
        slot must be given back: `adopt` the run once committed, or `unreserve`."""
        if self.free == 0:
            return None
        self._reserved += 1
        return self.owner()

    def unreserve(self) -> None:
        """Give back a reserved slot whose run was not created (a repeat, a failed commit)."""
        self._reserved = max(0, self._reserved - 1)
        self._freed.set()

    def adopt(self, run: RunRecord, owner: str) -> None:
        """Execute a run committed leased to `owner` (from `reserve`) now, in its reserved slot."""
        self._reserved = max(0, self._reserved - 1)
        if self._stopping:  # shutting down: the run goes back to the queue for the next start
            self._give_back(run, owner)
            return
        service = self.service
        service.executor(service.plan_for(run)).mark_fresh(run.id)  # nothing journaled, already marked running
        self._start(run, owner)

    def _give_back_claim(self, owner: str) -> None:
        """A claim failed: it may have committed with its answer lost. Its owner is its own, so every
        run still leased to it goes back to the queue at once, without a stall counted (when the
        store cannot be reached now either, the leases expire and the runs are claimed again)."""

        async def give_back() -> None:
            with contextlib.suppress(StoreError):
                returned = await self.service.store.release_claim(owner)
                if returned:
                    log.info("gave back %d runs of a claim whose answer was lost", returned)
                    self.wake.set()

        self._track(give_back())

    def _give_back(self, run: RunRecord, owner: str) -> None:
        self._track(self._release(run, owner))

    def _track(self, returning: Coroutine[Any, Any, None]) -> None:
        """Run a give-back in the background; `stop` waits for it before the store closes."""
        task = asyncio.create_task(returning)
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _release(self, run: RunRecord, owner: str) -> None:
        with contextlib.suppress(StoreError):
            await self.service.store.release(run.id, owner)

    def _start(self, run: RunRecord, owner: str) -> None:
        task = asyncio.create_task(self.execute(run, owner))
        self._runs.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._runs.discard(task)
        self._freed.set()

    async def work_once(self, worker: str) -> int:
        """Claim the oldest due run (if any) for `worker` and execute it here; how many runs were
        claimed. A failed claim raises `StoreError`; a run's own failures end in its record."""
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
            result = await service.execute(run, empty_journal=run.claim_steps == 0)
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
            run_context.reset(token)

    async def stop(self, grace: float) -> None:
        """Stop claiming; let running runs finish within `grace` seconds, then release the rest."""
        self._stopping = True
        self.wake.set()
        self._freed.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            # a claim under way finishes (its runs start and count as running); then the loop ends
            await asyncio.wait({dispatcher}, timeout=grace)
            if not dispatcher.done():
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await dispatcher
        if self._returning:  # runs on their way back to the queue get there before the store closes
            await asyncio.wait(set(self._returning), timeout=max(0.0, deadline - loop.time()))
        if not self._runs:
            return
        _done, pending = await asyncio.wait(set(self._runs), timeout=max(0.0, deadline - loop.time()))
        unfinished = dict(self.current)  # cancelling a run's task removes it from `current`
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for run_id, (run, worker) in unfinished.items():
            # only while this claim still holds the lease: a run that ended meanwhile stays as it is
            with contextlib.suppress(StoreError):
                await self.service.store.release(run_id, worker)
                log.info("released run %s of flow %s at shutdown", run_id, run.flow)
