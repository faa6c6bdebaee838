"""Parsing of the HTTP `Retry-After` header: delta-seconds or an HTTP-date, capped."""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime

_DELTA = re.compile(r"[0-9]+(\.[0-9]+)?")  # RFC 9110 says an integer; Shopify sends `2.0`


def parse_retry_after(value: str | None, *, now: float, cap: float) -> float | None:
    """Seconds to wait per a `Retry-After` value, between 0 and `cap`; None when absent or unparsable.
    Delta-seconds may have a fraction (`2.0`, as Shopify sends it).

    `now` is the current Unix time, used for the HTTP-date form (`Wed, 21 Oct 2015 07:28:00 GMT`).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA.fullmatch(text):
        seconds = float(text) if len(text) <= 15 else cap
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(0.0, min(seconds, cap))
