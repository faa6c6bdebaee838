"""What the console's overview shows of the sources this node runs (`Service.sources`).

One entry per flow whose trigger kind has a source, whatever the kind (schedule, poll, queue, file
or a plugin's): its kind's key, how long ago it last reached its origin (since it started, before
its first reach: `SourceHost.since`), how late it took its last event against the origin's own time
(`syncline_source_delay_seconds`, when the source reports one) and whether it is paused because the
node's backlog is over `service.max_backlog` (`NodeSourceContext.paused`). Nothing here names a kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class _Context(Protocol):
    def paused(self) -> bool: ...


class _Kind(Protocol):
    @property
    def key(self) -> str: ...


class _Flow(Protocol):
    @property
    def name(self) -> str: ...


class Host(Protocol):
    """What the overview reads of a `runtime.service.sources.SourceHost`."""

    @property
    def flow(self) -> _Flow: ...

    @property
    def kind(self) -> _Kind: ...

    @property
    def context(self) -> _Context: ...

    @property
    def since(self) -> float | None: ...


@dataclass(frozen=True)
class SourceState:
    """One flow's source as this node sees it."""

    kind: str
    lag: float | None  # seconds since it last reached its origin; None before it started
    delay: float | None  # how late its last event was taken, when the source reports it
    paused: bool  # held back by the node's backlog


def source_states(hosts: Iterable[Host], now: float, metrics: Any) -> dict[str, SourceState]:
    """flow → its source's state, for every running source of this node."""
    delays = _delays(metrics)
    states = {}
    for host in hosts:
        since = host.since
        states[host.flow.name] = SourceState(
            kind=host.kind.key,
            lag=None if since is None else max(0.0, now - since),
            delay=delays.get((host.flow.name, host.kind.key)),
            paused=host.context.paused(),
        )
    return states


def _delays(metrics: Any) -> dict[tuple[str, str], float]:
    """(flow, kind) → the last value of `syncline_source_delay_seconds` set on this node."""
    gauge = getattr(metrics, "source_delay", None)
    found: dict[tuple[str, str], float] = {}
    if gauge is None:
        return found
    for family in gauge.collect():
        for sample in family.samples:
            flow, kind = sample.labels.get("flow"), sample.labels.get("kind")
            if flow and kind:
                found[(flow, kind)] = float(sample.value)
    return found
