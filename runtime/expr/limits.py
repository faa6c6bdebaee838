"""`Limits`: the bounds every compiled expression and template runs under.

One `Limits` value belongs to an `ExpressionEngine`; the generated code and the filters read it
through the render state. The defaults suit integration payloads; raise them per project if needed.
Exceeding a bound raises `LimitError` (reason `expression_limit`); a costly single operation
(converting 1E+999999999 to an integer, repeating a string, writing JSON) is sized first and refused
before it starts, and loops (in templates and inside filters) check the time budget as they go, so
one render never holds the event loop much past `time_budget`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for size, time and nesting. Exceeding one raises `LimitError` before the work is done."""

    max_string: int = 1 << 20
    """Longest string (characters) an expression may build: concatenation, repetition, join, output."""
    max_items: int = 100_000
    """Longest list an expression may build from nothing: `range()`, list repetition, `batch`, `slice`."""
    max_int_digits: int = 4300
    """Largest integer (decimal digits) an expression may make: `*` and `**` on integers, `int`, indexes."""
    time_budget: float = 1.0
    """Seconds one render may take; checked in loops and in iteration-heavy filters."""
    max_depth: int = 64
    """Deepest expression nesting accepted at compile time."""
    cache_size: int = 4096
    """How many compiled results the engine keeps (least recently used are dropped)."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    """The monotonic clock `time_budget` is measured with (tests give a counting fake)."""

    @property
    def max_int_bits(self) -> int:
        # 3.33 bits per decimal digit, rounded up.
        return self.max_int_digits * 10 // 3 + 1
