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
