"""Secret redaction for every text that leaves the connector.

`Redactor` knows the connection's own secrets (passwords, tokens, client secrets, HMAC and API keys,
and OAuth access tokens as they are fetched) in the forms they travel in (raw, percent-encoded,
JSON-escaped, inside a Basic credential), replaces them with `***`, then applies the runtime's
`ConnectorContext.redact`. So a secret never leaks even when the runtime's redact is the identity.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"


def basic_credential(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Redactor:
    def __init__(self, outer: Callable[[str], str] | None = None, secrets: Iterable[str] = ()) -> None:
        self._outer = outer
        self._needles: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str, *, derived: Iterable[str] = ()) -> None:
        """Redact `secret` (in its usual encodings) and the `derived` texts made from it."""
        if not secret:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], *derived}
        changed = False
        for form in forms:
            if form and form not in self._needles:
                self._needles.append(form)
                changed = True
        if changed:
            self._needles.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        if self._outer is not None:
            # a failing runtime hook must not turn an error report into a crash
            with contextlib.suppress(Exception):
                text = self._outer(text)
        return text

    def value(self, data: Any, _depth: int = 0) -> Any:
        """A copy of a JSON-like value with every string (keys included) redacted."""
        if _depth > 200:
            return MASK
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {(self(k) if isinstance(k, str) else k): self.value(v, _depth + 1) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(v, _depth + 1) for v in data]
        if data is None or isinstance(data, bool | int | float | Decimal):
            return data
        return self(str(data))
