"""The bundled connections name their URLs as `env('X') | default('http://127.0.0.1:870N')`: with no
setting in the environment they start on the default (the demo's simulators), with one they use it."""

from __future__ import annotations

from pathlib import Path

from runtime.compiler import check_project
from runtime.demo.simulators import DEMO_CREDENTIALS
from runtime.engine.plan import build_plan
from runtime.expr import ENV_KEY, SECRETS_KEY

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {"crm": "http://127.0.0.1:8701", "erp": "http://127.0.0.1:8702", "billing": "http://127.0.0.1:8703"}


def test_connection_urls_fall_back_to_their_defaults_and_follow_the_setting() -> None:
    plan = build_plan(check_project(ROOT))
    for name, default in DEFAULTS.items():
        config = plan.connections[name].config
        unset = config.render({SECRETS_KEY: DEMO_CREDENTIALS.get, ENV_KEY: {}.get})
        assert unset["base_url"] == default, name
        setting = {f"{name.upper()}_URL": f"https://{name}.example.com"}
        assert (
            config.render({SECRETS_KEY: DEMO_CREDENTIALS.get, ENV_KEY: setting.get})["base_url"]
            == setting[f"{name.upper()}_URL"]
        )
