"""Reading form bodies with nested keys, as Stripe (`items[0][price]=…`) and Chargebee
(`subscription_items[item_price_id][0]=…`) read them: brackets build mappings, and a mapping whose
keys are all digits becomes a list in index order."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_nested(body: bytes | str) -> dict[str, Any]:
    """`a[b][0]=x&c=y` → `{"a": {"b": ["x"]}, "c": "y"}`; plain repeated names keep the last value."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(name)
        parts = [name] if match is None else [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    result: dict[str, Any] = _lists(root)
    return result


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _lists(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value
