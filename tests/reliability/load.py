"""A webhook load generator that remembers every answer, for the kill and outage scenarios.

Each event has a unique id and body. `run()` posts new events at a steady rate until `stop()`;
every attempt is recorded with its start and end time and outcome: a status code, or none at all
when the connection was refused or cut (then the event may or may not have been committed — the
outcome is unknown). `settle()` then does what a well-behaved sender does: it posts every event
that has no 2xx yet again, with the same body, until it gets one. Idempotency makes that safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


def sender(timeout: float = 15.0) -> httpx.AsyncClient:
    """The sender's HTTP client. Idle keep-alive connections are dropped after 1 s, well before
    uvicorn closes them (5 s): otherwise a request sent on a connection the server is closing at
    that instant fails without an answer, and a test could not tell that from a server fault."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=1.0)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


@dataclass(frozen=True)
class Attempt:
    event_id: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer (refused, reset, cut by a kill)
    run_id: str | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class LoadGenerator:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: Callable[[], str],
        *,
        prefix: str,
        rate: float,
        concurrency: int = 16,
        pad: int = 64,
        body: Callable[[str, int], dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.prefix = prefix
        self.rate = rate
        self.pad = pad
        self.make_body = body
        self.attempts: list[Attempt] = []
        self.bodies: dict[str, bytes] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def event_body(self, event_id: str, n: int) -> bytes:
        body = self.make_body(event_id, n) if self.make_body else {"id": event_id, "n": n, "pad": "x" * self.pad}
        return json.dumps(body, separators=(",", ":")).encode()

    async def post(self, event_id: str) -> Attempt:
        started = time.monotonic()
        try:
            reply = await self.client.post(
                self.url(), content=self.bodies[event_id], headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            attempt = Attempt(event_id, started, time.monotonic(), None, None, type(exc).__name__)
        else:
            run_id = None
            if 200 <= reply.status_code < 300:
                run_id = str(reply.json()["run_id"])
            attempt = Attempt(event_id, started, time.monotonic(), reply.status_code, run_id)
        self.attempts.append(attempt)
        return attempt

    async def _one(self, event_id: str) -> None:
        try:
            await self.post(event_id)
        finally:
            self._sem.release()

    async def run(self) -> None:
        """Post new events at `rate` per second until `stop()`; waits for the posts in flight."""
        n = 0
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            await self._sem.acquire()
            n += 1
            event_id = f"{self.prefix}-{n:06d}"
            self.bodies[event_id] = self.event_body(event_id, n)
            task = asyncio.create_task(self._one(event_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - time.monotonic()))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        self._stop.set()

    def pending(self) -> list[str]:
        """Events without a 2xx so far."""
        accepted = {a.event_id for a in self.attempts if a.accepted}
        return [e for e in self.bodies if e not in accepted]

    async def settle(self, *, timeout: float, concurrency: int = 16) -> None:
        """Post every event without a 2xx again (same body) until each has one."""
        deadline = time.monotonic() + timeout
        sem = asyncio.Semaphore(concurrency)

        async def until_accepted(event_id: str) -> None:
            while time.monotonic() < deadline:
                async with sem:
                    attempt = await self.post(event_id)
                if attempt.accepted:
                    return
                await asyncio.sleep(0.2)

        await asyncio.gather(*(until_accepted(e) for e in self.pending()))
        left = self.pending()
        assert not left, f"{len(left)} events never got a 2xx within {timeout}s, e.g. {left[:5]}"

    # ------------------------------------------------------------------------------- results
    def accepted(self) -> dict[str, set[str]]:
        """Event id -> every run id a 2xx answer named for it."""
        out: dict[str, set[str]] = {}
        for a in self.attempts:
            if a.accepted and a.run_id is not None:
                out.setdefault(a.event_id, set()).add(a.run_id)
        return out

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.attempts:
            label = str(a.status) if a.status is not None else f"no answer ({a.error})"
            counts[label] = counts.get(label, 0) + 1
        return counts
