"""Secret resolution and redaction.

`secret('NAME')` in an expression reads, in order: values given explicitly (FlowTest `secrets:`),
the environment variable `NAME`, then the file `$SYNCLINE_SECRETS_DIR/NAME` (Docker/Kubernetes
style). Every value handed out is remembered by the `SecretStore`, whose `redact` replaces it with
`***` in any text or JSON value: the journal, errors, logs and API responses go through it.

Values derived from a secret (`('user:' ~ secret('PW')) | b64encode`, an upper-cased or sliced
secret, ...) are secret-marked by the expression engine (`runtime/expr/taint.py`): `redact_value`
masks every marked string, and `note` remembers the marked strings of a value that leaves for a
connector, so text that echoes them later (a connector's error, a log line) is masked too. The
derived values remembered are bounded (the most recent `MAX_DERIVED`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.expr import Secret, SecretText
from runtime.expr.secrets import MIN_SECRET_LENGTH, marked_strings, mask_marked, redact_with

MAX_DERIVED = 512  # derived secret values remembered for masking text (most recent first kept)


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
        self._derived: OrderedDict[str, None] = OrderedDict()
        self._sorted: list[str] | None = []
        self._resolved = False
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
        self._resolved = True
        return SecretText(value) if len(value) >= MIN_SECRET_LENGTH else Secret(value)

    def remember(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH:
            with self._lock:
                if value not in self._known:
                    self._known.add(value)
                    self._sorted = None

    def remember_derived(self, value: str) -> None:
        """Remember a value computed from a secret, so text that shows it is masked too."""
        if len(value) < MIN_SECRET_LENGTH:
            return
        text = str(value)
        with self._lock:
            if text in self._known:
                return
            if text in self._derived:
                self._derived.move_to_end(text)
                return
            self._derived[text] = None
            while len(self._derived) > MAX_DERIVED:
                self._derived.popitem(last=False)
            self._sorted = None

    def note(self, value: Any) -> None:
        """Remember the derived secret values (secret-marked strings other than a secret as resolved
        or text joined with one) inside `value`, e.g. what a connector is about to be sent."""
        if not self._resolved:  # no secret handed out by this store: nothing can be marked
            return
        for text in marked_strings(value):
            if type(text) is not SecretText:
                self.remember_derived(text)

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._known)

    def _needles(self) -> list[str]:
        needles = self._sorted
        if needles is None:
            with self._lock:
                needles = sorted({*self._known, *self._derived}, key=len, reverse=True)
                self._sorted = needles
        return needles

    def redact(self, text: str) -> str:
        needles = self._needles()
        if isinstance(text, Secret):
            return mask_marked(text, needles)
        if not needles:
            return text
        out = str(text)
        for needle in needles:
            if needle in out:
                out = out.replace(needle, "***")
        return out

    def redact_value(self, value: Any) -> Any:
        """A copy of a JSON value as people may see it: secret values masked, secret-marked strings
        masked (derived ones whole); the derived values met are remembered first (`note`)."""
        if not self._resolved and not self._known:
            return value
        derived: list[str] = []
        masked = redact_with(value, self._needles(), derived.append)
        for text in derived:
            if type(text) is not SecretText:
                self.remember_derived(text)
        return masked


def env_resolver(environ: Mapping[str, str] | None = None) -> Any:
    source = environ if environ is not None else os.environ

    def resolve(name: str) -> str | None:
        return source.get(name)

    return resolve
