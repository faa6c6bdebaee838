"""Building `ConnectorError`s for the broker connectors: one line, secrets removed, cut to length."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

from runtime.connector_api import ConnectorError, ErrorClass, FailureReason

_MAX_DETAIL = 400


class Errors:
    """Makes the errors of one connection: `where: what: detail`, passed through the redactor.

    Besides every secret the runtime knows (`redact`), the connection's own credentials are masked
    (also URL-encoded), so a client library that echoes its URL cannot leak them.
    """

    def __init__(self, connection: str, redact: Callable[[str], str], secrets: Iterable[str | None] = ()) -> None:
        self.connection = connection
        self._redact = redact
        found: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 3:
                found.update({secret, quote(secret, safe=""), quote_plus(secret)})
        self._secrets = sorted(found, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._redact(text)

    def make(
        self,
        operation: str | None,
        what: str,
        *,
        reason: FailureReason,
        error_class: ErrorClass,
        detail: BaseException | str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ConnectorError:
        where = f"{self.connection}.{operation}" if operation else self.connection
        message = f"{where}: {what}"
        if detail is not None:
            described = describe(detail)
            if described:
                message += f": {described}"
        return ConnectorError(
            self.text(message), reason=reason, error_class=error_class, status=status, retry_after=retry_after
        )


def describe(detail: BaseException | str) -> str:
    """An exception's message (or its type when it has none) on one line, cut to a readable length."""
    if isinstance(detail, BaseException):
        text = str(detail).strip() or type(detail).__name__
        if isinstance(detail, TimeoutError) and not str(detail).strip():
            text = "timed out"
    else:
        text = detail
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
