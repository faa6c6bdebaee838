"""The event loop a `syncline serve` node runs on: uvloop where it is installed (a dependency on
Linux and macOS), else asyncio's own.

Measured on P1 (bench/p1_webhook_sync.py, 2 cores, 32 connections): uvloop serves about 25% more
requests per second than asyncio's selector loop with the same code (702 against 559 req/s)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOP_ENV = "SYNCLINE_EVENT_LOOP"  # "asyncio" forces asyncio's loop (e.g. to compare, or to debug)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed and not turned off, else None (asyncio's)."""
    if os.environ.get(LOOP_ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    return "uvloop" if loop_factory() is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
