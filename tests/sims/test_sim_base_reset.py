"""A simulator's seed() may number its records with next_number(): reset() seeds under the state lock,
which must therefore be reentrant (it once deadlocked here)."""

from __future__ import annotations

import threading

from runtime.demo.sims.base import VendorSim


class Numbered(VendorSim):
    name = "numbered"

    def seed(self) -> None:
        self.data = {"items": {}}
        for _ in range(3):
            number = self.next_number("items")
            self.data["items"][str(number)] = {"id": number}


def test_seed_may_call_next_number_under_reset() -> None:
    done = threading.Event()
    made: list[Numbered] = []

    def build() -> None:
        sim = Numbered()
        sim.data["items"]["x"] = {"id": "x"}
        sim.reset()
        made.append(sim)
        done.set()

    threading.Thread(target=build, daemon=True).start()
    assert done.wait(timeout=5), "reset() deadlocked: seed() called next_number() under the lock"
    sim = made[0]
    assert sorted(sim.data["items"]) == ["1", "2", "3"] and sim.counters == {"items": 3}
    assert sim.next_number("items") == 4
