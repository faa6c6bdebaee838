"""The vendor simulators `syncline demo --systems a,b` starts next to the bundled project.

Each simulator (`runtime/demo/sims/<name>.py`) is served on loopback — on port 8711 + its place in the
list of simulators when that port is free, else on any free port — and announced in the environment
the way the example projects read it: the URL under the names their Connections use
(`STRIPE_URL`, `SALESFORCE_URL` and `SALESFORCE_LOGIN_URL`, `SAP_URL`, …) and the credentials the
simulator accepts under the secret names the presets' defaults use (`STRIPE_API_KEY`,
`SALESFORCE_PRIVATE_KEY`, …), so a Connection with `preset:` and an `env('…_URL')` base URL reaches it.
"""

from __future__ import annotations

import argparse
import importlib
import socket
from dataclasses import dataclass, field
from typing import Any

from runtime.demo import sims
from runtime.demo.sims.base import VendorSim

FIRST_PORT = 8711

# simulator → environment variables holding its URL (as the example projects' Connections read them)
URL_NAMES: dict[str, tuple[str, ...]] = {
    "salesforce": ("SALESFORCE_URL", "SALESFORCE_LOGIN_URL"),
    "salesforce_cpq": ("SALESFORCE_URL", "SALESFORCE_LOGIN_URL"),  # CPQ lives in a Salesforce org
    "sap_s4hana": ("SAP_URL",),
    "dynamics365": ("D365_URL", "D365_LOGIN_URL"),
}
# simulator → (secret name the preset's default reads, the constant holding the value the simulator accepts:
# in the simulator's module, or `module.NAME` in another simulator module)
CREDENTIALS: dict[str, tuple[tuple[str, str], ...]] = {
    "stripe": (("STRIPE_API_KEY", "API_KEY"),),
    "shopify": (("SHOPIFY_ACCESS_TOKEN", "ACCESS_TOKEN"),),
    "chargebee": (("CHARGEBEE_API_KEY", "API_KEY"),),
    "salesforce": (("SALESFORCE_CONSUMER_KEY", "CONSUMER_KEY"),),
    "salesforce_cpq": (("SALESFORCE_CONSUMER_KEY", "salesforce.CONSUMER_KEY"),),
    "sap_s4hana": (("SAP_USER", "USER"), ("SAP_PASSWORD", "PASSWORD")),
    "netsuite": (("NETSUITE_CONSUMER_KEY", "CONSUMER_KEY"), ("NETSUITE_CONSUMER_SECRET", "CONSUMER_SECRET"),
                 ("NETSUITE_TOKEN_ID", "TOKEN_ID"), ("NETSUITE_TOKEN_SECRET", "TOKEN_SECRET")),
    "dynamics365": (("D365_CLIENT_ID", "CLIENT_ID"), ("D365_CLIENT_SECRET", "CLIENT_SECRET")),
    "zuora": (("ZUORA_CLIENT_ID", "CLIENT_ID"), ("ZUORA_CLIENT_SECRET", "CLIENT_SECRET")),
    "avalara": (("AVALARA_ACCOUNT_ID", "ACCOUNT_ID"), ("AVALARA_LICENSE_KEY", "LICENSE_KEY")),
    "wms": (("WMS_API_KEY", "API_KEY"),),
}  # fmt: skip


def url_names(name: str) -> tuple[str, ...]:
    """The environment variables that carry simulator `name`'s URL."""
    return URL_NAMES.get(name, (f"{name.upper()}_URL",))


def systems_argument(text: str) -> list[str]:
    """`--systems stripe,shopify` (or `all`): known simulator names, in the order given, each once."""
    known = sims.available()
    if text.strip().lower() == "all":
        return known
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        what = f"unknown system {', '.join(map(repr, unknown))}" if unknown else "no system named"
        raise argparse.ArgumentTypeError(f"{what}; the simulators are: {', '.join(known)} (or all)")
    return names


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class VendorSimulators:
    """Running vendor simulators, by name."""

    running: dict[str, VendorSim] = field(default_factory=dict)

    @staticmethod
    def env_of(name: str, sim: VendorSim) -> dict[str, str]:
        """Simulator `name`'s URL and the credentials it accepts, by environment variable."""
        out = dict.fromkeys(url_names(name), sim.url)
        for secret, constant in CREDENTIALS.get(name, ()):
            where, _, attribute = constant.rpartition(".")
            module: Any = importlib.import_module(f"runtime.demo.sims.{where or name}")
            out[secret] = str(getattr(module, attribute))
        private_key = getattr(sim, "private_key", None)
        if private_key:  # Salesforce: the connected app's key, made when the simulator starts
            out["SALESFORCE_PRIVATE_KEY"] = str(private_key)
        return out

    def env(self) -> dict[str, str]:
        """URLs and credentials for the environment (later simulators win a shared name)."""
        out: dict[str, str] = {}
        for name, sim in self.running.items():
            out.update(self.env_of(name, sim))
        return out

    def describe(self) -> str:
        """One line per simulator: name, URL and the environment variables set for it."""
        lines = ["vendor simulators (their state: GET <url>/_sim/state):"]
        for name, sim in self.running.items():
            lines.append(f"  {name:<15} {sim.url:<24} {', '.join(self.env_of(name, sim))}")
        return "\n".join(lines)

    def stop(self) -> None:
        for sim in self.running.values():
            sim.stop()


def start_vendor_simulators(names: list[str]) -> VendorSimulators:
    """Start the named simulators on loopback (see the module docstring for the ports)."""
    known = sims.available()
    started = VendorSimulators()
    try:
        for name in names:
            sim = sims.load(name)()
            port = FIRST_PORT + known.index(name)
            try:
                started.running[name] = sim.start(port if _free(port) else None)
            except RuntimeError:  # the port was taken in between: any free one
                started.running[name] = sim.start(None)
    except BaseException:
        started.stop()
        raise
    return started
