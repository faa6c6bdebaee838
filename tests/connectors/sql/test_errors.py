"""Error translation of the SQL connector: classes, reasons and secrets kept out of messages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from connectors.sql import SqlConfig, classify, create
from connectors.sql.errors import Redactor, translate
from runtime.connector_api import CallRequest, ConnectorContext, ConnectorError
from tests.connectors.sql.conftest import Make, run

PASSWORD = "Sup3r-S3cret-pw"


class FakeDriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None, sqlite_errorname: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.sqlite_errorname = sqlite_errorname


def wrapped(kind: type[sa_exc.DBAPIError], **orig: Any) -> sa_exc.DBAPIError:
    return kind("SELECT :secret", {"secret": PASSWORD}, FakeDriverError("driver says no", **orig))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (wrapped(sa_exc.OperationalError), ("connect", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="08006"), ("connect", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="57P01"), ("connect", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="57014"), ("timeout", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="55P03"), ("timeout", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="40P01"), ("status", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlstate="40001"), ("status", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlite_errorname="SQLITE_BUSY"), ("connect", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlite_errorname="SQLITE_INTERRUPT"), ("timeout", "retriable")),
        (wrapped(sa_exc.OperationalError, sqlite_errorname="SQLITE_ERROR"), ("config", "fatal")),
        (wrapped(sa_exc.IntegrityError, sqlstate="23505"), ("status", "fatal")),
        (wrapped(sa_exc.ProgrammingError, sqlstate="42P01"), ("config", "fatal")),
        (wrapped(sa_exc.DataError, sqlstate="22P02"), ("status", "fatal")),
        (wrapped(sa_exc.InterfaceError), ("connect", "retriable")),
        (sa_exc.TimeoutError("QueuePool limit reached"), ("timeout", "retriable")),
        (RuntimeError("boom"), ("status", "fatal")),
    ],
)
def test_classification(error: BaseException, expected: tuple[str, str]) -> None:
    reason, error_class, _ = classify(error)
    assert (reason, error_class) == expected


def test_unreachable_server_is_retriable_and_hides_the_password(make: Make) -> None:
    seen: list[str] = []

    def redact(text: str) -> str:
        seen.append(text)
        return text.replace("127.0.0.1", "<host>")

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere"  # nothing listens on port 1
    db = make(url, {"q": {"sql": "SELECT 1"}}, redact=redact, timeout="2s")
    with pytest.raises(ConnectorError) as caught:
        run(db.call(CallRequest(operation="q", spec={})))
    error = caught.value
    assert (error.reason, error.error_class, error.retriable) == ("connect", "retriable", True)
    assert str(error).startswith("db.q: cannot connect to the database: ")
    assert PASSWORD not in str(error)
    assert "<host>" in str(error)  # every message passes through the context's redact
    assert seen


def test_url_password_and_bound_values_stay_out_of_messages() -> None:
    error = translate(wrapped(sa_exc.OperationalError), "db.q", Redactor(PASSWORD, lambda text: text))
    assert "SELECT :secret" not in str(error) and PASSWORD not in str(error)
    echoed = sa_exc.OperationalError("x", {}, FakeDriverError(f"bad password {PASSWORD} for postgres"))
    message = str(translate(echoed, "db.q", Redactor(PASSWORD, lambda text: text)))
    assert message == "db.q: cannot connect to the database: bad password *** for postgres"


def test_sqlite_url_is_relative_to_the_project_dir(make: Make, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    db = make("sqlite:///data/erp.db", {"mk": {"sql": "CREATE TABLE t (a INTEGER)", "mode": "execute"}})
    run(db.call(CallRequest(operation="mk", spec={})))
    assert (tmp_path / "data" / "erp.db").is_file()


def test_missing_sqlite_folder_is_a_connect_error(make: Make) -> None:
    db = make("sqlite:///no/such/dir/erp.db", {"q": {"sql": "SELECT 1"}})
    with pytest.raises(ConnectorError) as caught:
        run(db.call(CallRequest(operation="q", spec={})))
    assert caught.value.reason == "connect"


def test_postgres_json_binds_and_results_keep_decimals(pg_url: str, make: Make) -> None:
    db = make(
        pg_url,
        {
            "mk": {"sql": "CREATE TABLE docs (id INT PRIMARY KEY, body JSONB)", "mode": "execute"},
            "put": {"sql": "INSERT INTO docs VALUES (:id, CAST(:body AS jsonb))", "mode": "execute"},
            "get": {"sql": "SELECT body FROM docs WHERE id = :id", "mode": "query_one"},
            "float": {
                "sql": "SELECT CAST(0.1 AS float8) AS f, CAST(:d AS numeric) * 3 AS t",
                "mode": "query_one",
            },
        },
    )
    run(db.call(CallRequest(operation="mk", spec={})))
    body = {"total": Decimal("0.30"), "lines": [{"price": Decimal("0.1")}], "note": "x'; --"}
    run(db.call(CallRequest(operation="put", spec={}, params={"id": 1, "body": body})))
    got = run(db.call(CallRequest(operation="get", spec={}, params={"id": 1}))).output
    assert got == {"body": {"total": Decimal("0.30"), "lines": [{"price": Decimal("0.1")}], "note": "x'; --"}}
    assert isinstance(got["body"]["lines"][0]["price"], Decimal)
    row = run(db.call(CallRequest(operation="float", spec={}, params={"d": Decimal("0.1")}))).output
    assert row == {"f": Decimal("0.1"), "t": Decimal("0.3")}


def test_pool_exhaustion_is_a_retriable_timeout(pg_url: str, make: Make) -> None:
    db = make(pg_url, {"q": {"sql": "SELECT 1 AS one", "mode": "stream"}}, pool_size=1, timeout="300ms")

    async def hold_and_call() -> None:
        held = db.stream(CallRequest(operation="q", spec={}))
        try:
            await anext(held)  # keeps the only connection checked out
            await db.call(CallRequest(operation="q", spec={}))
        finally:
            await held.aclose()

    with pytest.raises(ConnectorError) as caught:
        run(hold_and_call())
    assert (caught.value.reason, caught.value.error_class) == ("timeout", "retriable")


def test_aclose_disposes_the_engine(backend: str, make: Make) -> None:
    db = make(backend, {"q": {"sql": "SELECT 1 AS one"}})
    assert run(db.call(CallRequest(operation="q", spec={}))).output == [{"one": 1}]
    pool = db._engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedin() == 1
    run(db.aclose())
    pool = db._engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedin() == 0


def test_unusable_url_at_create_is_a_config_error(make: Make) -> None:
    with pytest.raises(ConnectorError, match="invalid database url") as caught:
        make("{{ env('DB_URL') }}")  # not rendered
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    unchecked = SqlConfig.model_construct(url="mysql://u:pw@h/db")  # as if the engine rendered it
    with pytest.raises(ConnectorError, match="unsupported database 'mysql'"):
        create(unchecked, {}, ConnectorContext(connection="db"))
