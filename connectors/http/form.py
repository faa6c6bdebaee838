"""Form-encoded bodies (application/x-www-form-urlencoded), flat or with nested keys.

`flat` (the default) sends each field once, a list as the repeated parameter (`a=1&a=2`); nested
mappings are refused. `brackets` writes nested mappings and lists the way Stripe (and Rack, PHP)
read them: `metadata[order_id]=A-1`, `items[0][price]=price_1`. `brackets_index_last` puts a list's
index after the field names of its items, as Chargebee reads them:
`subscription_items[item_price_id][0]=basic&subscription_items[quantity][0]=2`. Null values are
left out in every style; decimals are written exactly and booleans as `true`/`false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from connectors.http.config import scalar_text

FormStyle = Literal["flat", "brackets", "brackets_index_last"]
MAX_DEPTH = 32


class FormError(ValueError):
    """The form cannot be encoded in the chosen style."""


def form_pairs(form: Mapping[str, Any], style: FormStyle = "flat") -> list[tuple[str, str]]:
    """The (name, value) pairs of a form body, in the form's order."""
    out: list[tuple[str, str]] = []
    for key, value in form.items():
        if style == "flat":
            _flat(str(key), value, out)
        else:
            _nested(str(key), "", value, out, style, 0)
    return out


def encode_form_body(form: Mapping[str, Any], style: FormStyle = "flat") -> bytes:
    return urlencode(form_pairs(form, style)).encode("ascii")


def _scalar(name: str, value: Any) -> str:
    try:
        return scalar_text(value)
    except ValueError as exc:
        raise FormError(f"form field {name!r}: {exc}") from None


def _flat(key: str, value: Any, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict | list):
            raise FormError(
                f"form field {key!r} holds a nested value; set form_style: brackets (Stripe) or "
                "brackets_index_last (Chargebee) to send nested keys"
            )
        if item is not None:
            out.append((key, _scalar(key, item)))


def _nested(prefix: str, suffix: str, value: Any, out: list[tuple[str, str]], style: FormStyle, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FormError(f"form field {prefix!r} is nested more than {MAX_DEPTH} levels")
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _nested(f"{prefix}[{key}]", suffix, item, out, style, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if style == "brackets_index_last" and isinstance(item, dict):
                for key, field in item.items():
                    _nested(f"{prefix}[{key}]", f"[{index}]{suffix}", field, out, style, depth + 1)
            else:
                _nested(f"{prefix}[{index}]", suffix, item, out, style, depth + 1)
    else:
        name = prefix + suffix
        out.append((name, _scalar(name, value)))
