"""`syncline demo --systems a,b` starts those vendor simulators next to the bundled project, prints each
one's URL, puts their URLs and credentials in the environment the presets read, and stops them with
the demo; an unknown name is a one-line usage error naming the simulators."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from runtime.cli import main
from runtime.demo import sims
from runtime.demo.sims import shopify, stripe
from runtime.demo.simulators import free_port
from runtime.demo.vendor_sims import start_vendor_simulators, systems_argument

ROOT = Path(__file__).resolve().parents[2]


def test_the_systems_argument_names_known_simulators() -> None:
    assert systems_argument(" stripe, shopify,stripe") == ["stripe", "shopify"]
    assert systems_argument("all") == sims.available() and "salesforce_cpq" in sims.available()


def test_an_unknown_system_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--systems", "stripe,stirpe"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "unknown system 'stirpe'; the simulators are: " in err and "chargebee" in err and "Traceback" not in err


def test_every_simulator_starts_and_gives_the_presets_its_url_and_credentials() -> None:
    started = start_vendor_simulators(sims.available())
    try:
        env = started.env()
        for name, sim in started.running.items():
            assert httpx.get(f"{sim.url}/_sim/state", timeout=5).json()["name"] == name
        assert env["STRIPE_URL"] == started.running["stripe"].url and env["STRIPE_API_KEY"] == stripe.API_KEY
        assert env["SALESFORCE_LOGIN_URL"] == env["SALESFORCE_URL"] == started.running["salesforce_cpq"].url
        assert env["SALESFORCE_PRIVATE_KEY"].startswith("-----BEGIN PRIVATE KEY-----")
        assert env["SAP_URL"] == started.running["sap_s4hana"].url and env["D365_LOGIN_URL"]
    finally:
        started.stop()


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def test_demo_starts_the_named_simulators_prints_their_urls_and_stops_them(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "demo", "--port", str(port), "--no-traffic",
         "--store", f"sqlite:///{tmp_path / 'demo.db'}", "--systems", "stripe,shopify"],
        cwd=ROOT, env={**os.environ, "SYNCLINE_OPERATOR_TOKENS": "demo-operator-token"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, seen), daemon=True).start()
    urls: dict[str, str] = {}
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while len(urls) < 2 and time.monotonic() < deadline:
            try:
                line = seen.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            output.append(line)
            if found := re.match(r"\s+(stripe|shopify)\s+(http://127\.0\.0\.1:\d+)\s+(\S.*)$", line):
                urls[found[1]] = found[2]
                assert found[3].split(", ")[0] == f"{found[1].upper()}_URL"
        assert set(urls) == {"stripe", "shopify"}, "".join(output)
        key = {"Authorization": f"Bearer {stripe.API_KEY}"}
        customers = httpx.get(f"{urls['stripe']}/v1/customers", headers=key, timeout=5)
        assert customers.status_code == 200 and customers.json()["object"] == "list"
        token = {"X-Shopify-Access-Token": shopify.ACCESS_TOKEN}
        products = httpx.get(f"{urls['shopify']}/admin/api/2024-07/products.json", headers=token, timeout=5)
        assert products.status_code == 200 and len(products.json()["products"]) == 5
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
    for url in urls.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/_sim/state", timeout=2)
