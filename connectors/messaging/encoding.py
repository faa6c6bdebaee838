"""Message bodies and headers on the wire.

A string body is sent as its UTF-8 text (`text/plain; charset=utf-8` unless a content type is
given); any other value as compact JSON with decimals written exactly (`application/json`).
Headers are the run's correlation headers overlaid by the operation's own.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import simplejson

from connectors.messaging.models import scalar_text

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and Infinity cannot be sent as JSON")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("NaN and Infinity cannot be sent as JSON")


def encode_body(body: Any, content_type: str | None) -> tuple[bytes, str]:
    """(bytes, content type) of a message body. Raises `ValueError` for a value JSON cannot hold."""
    if isinstance(body, str):
        return body.encode("utf-8"), content_type or TEXT
    if isinstance(body, bytes | bytearray):
        return bytes(body), content_type or "application/octet-stream"
    _check_finite(body)
    try:
        text = simplejson.dumps(
            body, use_decimal=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the body cannot be sent as JSON: {exc}") from None
    return text.encode("utf-8"), content_type or JSON


def header_text(value: Any) -> str:
    """A header value as text (numbers exact, booleans lower-case)."""
    return scalar_text(value)


def message_headers(run_headers: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """The run's correlation headers, then the operation's own (which win, compared case-insensitively)."""
    named = {name.lower() for name in own}
    headers = {name: value for name, value in run_headers.items() if name.lower() not in named}
    headers.update(own)
    return headers
