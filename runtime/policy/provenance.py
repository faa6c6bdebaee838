"""Provenance: where a message came from, which flows carried it, how many hops it has made.

Each run derives its provenance from the request that started it: the `X-Syncline-Origin`,
`X-Syncline-Chain` and `X-Syncline-Hops` headers a system passes back to Syncline (or, for a first
hop, the flow's `source.system`). Every outgoing call carries the run's provenance in the same
headers. A write back to the origin system is an echo and is suppressed; a message past the hop
limit stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORIGIN = "x-syncline-origin"
CHAIN = "x-syncline-chain"
HOPS = "x-syncline-hops"


@dataclass(frozen=True)
class Provenance:
    origin: str | None
    chain: tuple[str, ...]
    hops: int

    def headers(self) -> dict[str, str]:
        out = {"X-Syncline-Chain": ",".join(self.chain), "X-Syncline-Hops": str(self.hops)}
        if self.origin:
            out["X-Syncline-Origin"] = self.origin
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "chain": list(self.chain), "hops": self.hops}


def derive(headers: dict[str, str], flow: str, source_system: str | None) -> Provenance:
    lowered = {k.lower(): v for k, v in headers.items()}
    origin = lowered.get(ORIGIN) or source_system
    chain = tuple(c for c in (lowered.get(CHAIN) or "").split(",") if c)
    try:
        hops = int(lowered.get(HOPS) or 0)
    except ValueError:
        hops = 0
    return Provenance(origin, (*chain, flow), hops + 1)
