"""Secret resolution and redaction.

`secret('NAME')` in an expression reads, in order: values given explicitly (FlowTest `secrets:`),
the environment variable `NAME`, then the file `$SYNCLINE_SECRETS_DIR/NAME` (Docker/Kubernetes
style). Every value handed out is remembered by the `SecretStore`, whose `redact` replaces it with
`***` in any text or JSON value: the journal, errors, logs and API responses go through it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.expr import Secret, redact, redact_value

MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary text; they are still masked where they stand


class SecretStore:
    """Resolves secrets and remembers every value it handed out, for redaction."""

    def __init__(
        self,
        explicit: Mapping[str, str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: str | None = None,
    ) -> None:
        self._explicit = dict(explicit or {})
        self._environ = environ if environ is not None else os.environ
        self._dir = secrets_dir if secrets_dir is not None else self._environ.get("SYNCLINE_SECRETS_DIR")
        self._known: set[str] = set()
        self._lock = threading.Lock()
        for value in self._explicit.values():
            self.remember(value)

    def resolve(self, name: str) -> Secret | None:
        value = self._explicit.get(name)
        if value is None:
            value = self._environ.get(name)
        if value is None and self._dir:
            path = Path(self._dir) / name
            if path.is_file() and path.resolve().parent == Path(self._dir).resolve():
                value = path.read_text(encoding="utf-8").strip()
        if value is None:
            return None
        self.remember(value)
        return Secret(value)

    def remember(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH:
            with self._lock:
                self._known.add(value)

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._known)

    def redact(self, text: str) -> str:
        return redact(text, self._known) if self._known else text

    def redact_value(self, value: Any) -> Any:
        return redact_value(value, self._known) if self._known else value


def env_resolver(environ: Mapping[str, str] | None = None) -> Any:
    source = environ if environ is not None else os.environ

    def resolve(name: str) -> str | None:
        return source.get(name)

    return resolve
