"""Translation of database and SQLAlchemy exceptions into `ConnectorError` at the connector's boundary.

Classes (the retry policy keys off `error_class`):

    connection refused / lost, pool exhausted, SQLite busy   reason=connect  retriable
    statement timeout, lock timeout, interrupted             reason=timeout  retriable
    serialization failure, deadlock                          reason=status   retriable
    constraint violated (IntegrityError)                     reason=status   fatal
    syntax error, unknown table, missing bind value          reason=config   fatal
    anything else                                            reason=status   fatal

Messages hold the driver's own message only (never the SQL's bound values), with the URL's password
removed and the whole text passed through the connection's `redact`.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote_plus

from sqlalchemy import exc as sa_exc

from runtime.connector_api import ConnectorError, ErrorClass, FailureReason

_MAX_DETAIL = 600

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_TIMEOUT = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available
_PG_RETRY = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_PG_CONNECT_PREFIXES = ("08", "57P", "53300")  # connection exceptions, admin shutdown, too many connections

# SQLite primary result codes (Python 3.11+ `sqlite_errorname`).
_SQLITE_CONNECT = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"}


class Redactor:
    """Removes the URL password and every secret the runtime knows from a text."""

    def __init__(self, password: str | None, redact: Callable[[str], str]) -> None:
        self._secrets = [s for s in {password, quote_plus(password or "")} if s] if password else []
        self._redact = redact

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._redact(text)


def _detail(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's `[SQL: ...] [parameters: ...]` trailer, on one line."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc).split("\n[SQL:")[0].split("\n(Background")[0]
    if isinstance(exc, sa_exc.StatementError) and orig is None:
        text = text.removeprefix("(sqlalchemy.exc.InvalidRequestError) ")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def classify(exc: BaseException) -> tuple[FailureReason, ErrorClass, str]:
    """(reason, error class, a short phrase) for an exception raised while talking to the database."""
    if isinstance(exc, sa_exc.TimeoutError):
        return "timeout", "retriable", "no free database connection in time"
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        sqlite_name = getattr(orig, "sqlite_errorname", None)
        if sqlstate in _PG_TIMEOUT or sqlite_name == "SQLITE_INTERRUPT":
            return "timeout", "retriable", "statement timed out"
        if sqlstate in _PG_RETRY:
            return "status", "retriable", "transaction conflict"
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return "connect", "retriable", "connection to the database lost"
        if isinstance(exc, sa_exc.IntegrityError):
            return "status", "fatal", "constraint violated"
        if isinstance(exc, sa_exc.OperationalError):
            if sqlite_name is not None:
                if sqlite_name in _SQLITE_CONNECT:
                    return "connect", "retriable", "database unavailable"
                return "config", "fatal", "statement failed"
            if sqlstate is None or sqlstate.startswith(_PG_CONNECT_PREFIXES):
                return "connect", "retriable", "cannot connect to the database"
            return "status", "retriable", "database unavailable"
        if isinstance(exc, sa_exc.ProgrammingError):
            return "config", "fatal", "statement failed"
        if isinstance(exc, sa_exc.DataError):
            return "status", "fatal", "value rejected by the database"
        return "status", "fatal", "database error"
    if isinstance(exc, sa_exc.StatementError):
        return "config", "fatal", "statement cannot run"
    if isinstance(exc, sa_exc.ArgumentError | ImportError | sa_exc.NoSuchModuleError):
        return "config", "fatal", "connection is misconfigured"
    return "status", "fatal", "unexpected error"


def translate(exc: BaseException, where: str, redactor: Redactor) -> ConnectorError:
    """A `ConnectorError` for `exc`, saying where (`connection.operation`) and why, with secrets removed."""
    reason, error_class, phrase = classify(exc)
    message = redactor(f"{where}: {phrase}: {_detail(exc)}")
    return ConnectorError(message, reason=reason, error_class=error_class)
