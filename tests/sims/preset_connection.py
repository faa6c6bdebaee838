"""A live http connector built from a shipped preset, as `syncline` builds it from a Connection that
says `preset: NAME` (the account values given here; templates rendered with `secret()` from `secrets`)."""

from __future__ import annotations

from typing import Any

from connectors.http import CONNECTOR, HttpConnector
from runtime.connector_api import ConnectorContext
from runtime.plugins import default_registry
from runtime.spec.documents import DocumentKinds, parse_document
from runtime.spec.yamlload import load_text

KINDS = DocumentKinds(default_registry())


def preset_connector(name: str, account: dict[str, Any], extra: str = "") -> HttpConnector:
    """The connector for `kind: Connection, preset: NAME, account: …` (plus `extra` YAML lines)."""
    import json

    text = f"kind: Connection\nname: {name}\npreset: {name}\naccount: {json.dumps(account)}\n{extra}"
    parsed, diags = parse_document(load_text(text, f"systems/{name}.yaml")[0], KINDS)
    assert parsed is not None, [d.text() for d in diags]
    model = parsed.model
    context = ConnectorContext(connection=name)
    connector = CONNECTOR.create(model.config, model.operations, context)
    assert isinstance(connector, HttpConnector)
    return connector


def http_connector(connection: str, config: Any, operations: dict[str, dict[str, Any]]) -> HttpConnector:
    """A live http connector for a config and operations given as plain data."""
    from connectors.http import HttpConfig, HttpOperation

    ops = {name: HttpOperation.model_validate(spec) for name, spec in operations.items()}
    made = CONNECTOR.create(HttpConfig.model_validate(config), ops, ConnectorContext(connection=connection))
    assert isinstance(made, HttpConnector)
    return made


def call_all(made: HttpConnector, *requests: Any) -> list[Any]:
    """The outputs of `requests` called one after another on `made`, which is closed after."""
    import asyncio

    async def go() -> list[Any]:
        try:
            return [(await made.call(r)).output for r in requests]
        finally:
            await made.aclose()

    return asyncio.run(go())
