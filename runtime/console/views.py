"""What the console's pages show, computed from the admin API's answers and the store's counts.

Pure helpers (no HTTP): the per-flow counts of the overview, a run's timeline, lineage in time
order, reconciliation results found in a run's steps, and the formatting filters of the templates.
Values shown here come from the admin API (already masked); the store is read only for counts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.expr import dumps
from runtime.store.base import RunFilter, Store

HOUR = 3600.0
DAY = 24 * HOUR

# the overview's columns: label → the run statuses counted in it
COLUMNS: dict[str, tuple[str, ...]] = {
    "succeeded": ("succeeded", "filtered"),
    "failed": ("failed", "exception", "rejected", "cancelled"),
    "dead-lettered": ("dead_lettered",),
    "held": ("held",),
    "waiting": ("queued", "running", "retrying", "waiting"),
}


@dataclass
class FlowCounts:
    """One flow's runs accepted in the last hour and day, by column, and per hour of the day."""

    flow: str
    hour: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    day: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    per_hour: list[int] = field(default_factory=lambda: [0] * 24)  # oldest hour first
    failed_per_hour: list[int] = field(default_factory=lambda: [0] * 24)


def column_of(status: str) -> str | None:
    for column, statuses in COLUMNS.items():
        if status in statuses:
            return column
    return None


async def overview_counts(store: Store, flows: Iterable[str], now: float) -> list[FlowCounts]:
    """Per flow, the runs accepted over the last day, counted by the store per hour."""
    counts = {name: FlowCounts(name) for name in flows}
    add_counts(counts, await store.run_counts(since=now - DAY, bucket=HOUR))
    return sorted(counts.values(), key=lambda c: c.flow)


def add_counts(counts: dict[str, FlowCounts], found: Mapping[tuple[str, str, int], int]) -> None:
    """Add `Store.run_counts` (hour 0 the oldest of the day, 23 the last hour) to `counts`."""
    for (flow, status, hour), number in found.items():
        entry = counts.get(flow)
        if entry is None:
            entry = counts[flow] = FlowCounts(flow)
        column = column_of(status)
        if column is None or not 0 <= hour < 24:
            continue
        entry.day[column] += number
        entry.per_hour[hour] += number
        if hour == 23:
            entry.hour[column] += number
        if column in ("failed", "dead-lettered"):
            entry.failed_per_hour[hour] += number


# ------------------------------------------------------------------------------------------ runs

CLOCK_SLACK = 300.0  # seconds two nodes' clocks may disagree when they stamp runs' `created_at`


async def seq_before(store: Store, until: float, slack: float = CLOCK_SLACK) -> int | None:
    """A keyset start (`before_seq`) for runs accepted before `until`, found by bisecting `seq`.

    Runs are listed newest `seq` first, so a list filtered by `until` deep in the history would
    read every newer run before the first match. `seq` and `created_at` grow together (up to the
    nodes' clock disagreement, `slack`), so the smallest `b` whose newest run below has
    `created_at >= until + slack` bounds the runs to read; the `until` filter still applies. About
    20 primary-key reads, whatever the history's length. None when no bound helps.
    """
    newest = await store.list_runs(RunFilter(limit=1))
    if not newest or newest[0].created_at < until + slack:
        return None
    low, high = 1, newest[0].seq + 1  # f(high) >= until + slack; find the smallest such b
    while low < high:
        middle = (low + high) // 2
        below = await store.list_runs(RunFilter(limit=1, before_seq=middle))
        if below and below[0].created_at >= until + slack:
            high = middle
        else:
            low = middle + 1
    return high


@dataclass
class TimelineStep:
    key: str
    kind: str
    status: str
    attempts: int
    started: float  # seconds after the run started
    duration_ms: float
    offset_pct: float  # where its bar starts and how wide it is, in percent of the run's span
    width_pct: float
    input: Any
    output: Any
    error: Any
    compensation: bool
    depth: int  # nesting: "each[2].post" and "sub/post" are one level deeper


def timeline(run: Mapping[str, Any]) -> list[TimelineStep]:
    """The run's steps in journal order with their place on a common time axis."""
    steps = list(run.get("steps") or [])
    if not steps:
        return []
    origin = min([float(s["started_at"]) for s in steps] + [float(run.get("started_at") or math.inf)])
    end = max(float(s["finished_at"]) for s in steps)
    span = max(end - origin, 1e-6)
    out = []
    for s in steps:
        start, finish = float(s["started_at"]), float(s["finished_at"])
        key = str(s["step"])
        out.append(
            TimelineStep(
                key=key,
                kind=str(s["kind"]),
                status=str(s["status"]),
                attempts=int(s.get("attempts") or 1),
                started=start - origin,
                duration_ms=float(s.get("duration_ms") or 0),
                offset_pct=round(100 * (start - origin) / span, 2),
                width_pct=max(round(100 * (finish - start) / span, 2), 0.6),
                input=s.get("input"),
                output=s.get("output"),
                error=s.get("error"),
                compensation="~compensate" in key,
                depth=key.count(".") + key.count("/"),
            )
        )
    return out


def lineage(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs in the order they were accepted (oldest first), each once."""
    seen: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        seen.setdefault(str(run["id"]), run)
    return sorted(seen.values(), key=lambda r: (float(r.get("created_at") or 0), str(r["id"])))


def reconciliations(run: Mapping[str, Any], tolerances: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The results of the run's `reconcile` steps: matched count, mismatched fields (with the
    tolerance that applied), keys only on the left or only on the right."""
    found = []
    for step in run.get("steps") or []:
        output = step.get("output")
        if step.get("kind") != "reconcile" or not isinstance(output, dict):
            continue
        step_id = str(step["step"]).rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        tolerance = tolerances.get(step_id, {})
        mismatched = [{**m, "tolerance": tolerance.get(str(m.get("field")))} for m in output.get("mismatched") or []]
        found.append(
            {
                "step": step["step"],
                "matched": output.get("matched", 0),
                "mismatched": mismatched,
                "only_left": list(output.get("only_left") or []),
                "only_right": list(output.get("only_right") or []),
            }
        )
    return found


# --------------------------------------------------------------------------------------- filters


def when(value: Any) -> str:
    """A Unix time as UTC text (empty for none)."""
    if value in (None, ""):
        return ""
    moment = dt.datetime.fromtimestamp(float(value), dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def iso_input(value: Any) -> str:
    """A Unix time as the value of a `datetime-local` input (UTC)."""
    if value in (None, ""):
        return ""
    return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%dT%H:%M")


def from_iso_input(text: str) -> float | None:
    """A `datetime-local` value (taken as UTC) as a Unix time; None when empty. ValueError when bad."""
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def duration(seconds: Any) -> str:
    if seconds in (None, ""):
        return ""
    value = float(seconds)
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 120:
        return f"{value:.2f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def pretty(value: Any) -> str:
    """A JSON value as indented text (numbers exact)."""
    try:
        return dumps(value, pretty=True)
    except (TypeError, ValueError):
        return repr(value)


def keys_text(keys: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}:{v}" for k, v in (keys or {}).items())
