"""Vendor simulators: one module per system, named like its preset (`sap_s4hana.py`, `netsuite.py`, …),
each defining `SIM`, a `VendorSim` subclass on the shared base (`base.py`): a real HTTP server on
loopback with the vendor's paths, auth, bodies, pagination, error shapes, rate-limit answers and
idempotency behaviour, a small in-memory dataset, and fault injection.

`available()` lists the simulator modules found in this package; `load(name)` imports one.
"""

from __future__ import annotations

import importlib
import pkgutil

from runtime.demo.sims.base import VendorSim

_NOT_SIMULATORS = frozenset({"base"})  # and modules whose name starts with _ (helpers)


def available() -> list[str]:
    """The names of the simulators in this package (the preset names they simulate)."""
    return sorted(
        m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_SIMULATORS and not m.name.startswith("_")
    )


def load(name: str) -> type[VendorSim]:
    """The simulator class for `name`; KeyError when there is none."""
    if name not in available():
        raise KeyError(name)
    sim: type[VendorSim] = importlib.import_module(f"{__name__}.{name}").SIM
    return sim
