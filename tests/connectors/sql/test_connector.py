"""The SQL connector's contract, run on SQLite (a file in tmp_path) and PostgreSQL alike."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import anyio
import pytest

from connectors.sql import SqlConnector
from runtime.connector_api import CallRequest, ConnectorError
from tests.connectors.sql.conftest import Make, run

HOSTILE = "'; DROP TABLE customers; --"

OPERATIONS: dict[str, dict[str, Any]] = {
    "setup": {
        "sql": "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
        "credit NUMERIC(12, 2), score REAL)",
        "mode": "execute",
        "effect": "command",
    },
    "add": {
        "sql": "INSERT INTO customers (id, name, credit, score) VALUES (:id, :name, :credit, :score)",
        "mode": "execute",
        "effect": "create",
    },
    "add_many": {
        "sql": "INSERT INTO customers (id, name, credit) VALUES (:id, :name, :credit)",
        "mode": "insert_many",
        "effect": "create",
    },
    "all": {"sql": "SELECT id, name, credit, score FROM customers ORDER BY id"},
    "by_name": {"sql": "SELECT id, name FROM customers WHERE name = :name ORDER BY id"},
    "one": {"sql": "SELECT id, name, credit FROM customers WHERE id = :id", "mode": "query_one"},
    "rename": {"sql": "UPDATE customers SET name = :name WHERE id < :below", "mode": "execute"},
    "count": {"sql": "SELECT COUNT(*) AS n FROM customers", "mode": "query_one"},
    "stream_all": {"sql": "SELECT id FROM customers ORDER BY id", "mode": "stream", "batch_size": 10},
}


def call(connector: SqlConnector, operation: str, spec: dict[str, Any] | None = None, **params: Any) -> Any:
    request = CallRequest(operation=operation, spec=spec or {}, params=params)
    return run(connector.call(request)).output


def add(connector: SqlConnector, id: int, name: str | None, credit: Any = None, score: Any = None) -> Any:
    return call(connector, "add", id=id, name=name, credit=credit, score=score)


@pytest.fixture
def db(backend: str, make: Make) -> SqlConnector:
    connector = make(backend, OPERATIONS)
    assert set(call(connector, "setup")) == {"rowcount"}
    return connector


def test_query_query_one_and_execute(db: SqlConnector) -> None:
    assert add(db, 1, "Ada") == {"rowcount": 1}
    assert add(db, 2, "Bob") == {"rowcount": 1}
    assert call(db, "all") == [
        {"id": 1, "name": "Ada", "credit": None, "score": None},
        {"id": 2, "name": "Bob", "credit": None, "score": None},
    ]
    assert call(db, "one", id=2) == {"id": 2, "name": "Bob", "credit": None}
    assert call(db, "one", id=99) is None
    assert call(db, "rename", name="X", below=10) == {"rowcount": 2}
    assert [row["name"] for row in call(db, "all")] == ["X", "X"]


def test_spec_params_take_precedence_over_step_params(db: SqlConnector) -> None:
    add(db, 1, "Ada")
    add(db, 2, "Bob")
    rows = call(db, "by_name", {"params": {"name": "Bob"}}, name="Ada")
    assert rows == [{"id": 2, "name": "Bob"}]


def test_hostile_strings_are_stored_literally(db: SqlConnector) -> None:
    add(db, 1, HOSTILE)
    assert call(db, "by_name", name=HOSTILE) == [{"id": 1, "name": HOSTILE}]
    assert call(db, "by_name", name="' OR '1'='1") == []
    assert call(db, "count") == {"n": 1}  # the table is still there


def test_insert_many_from_params_rows_field_and_step(db: SqlConnector) -> None:
    rows = [{"id": i, "name": f"c{i}", "credit": Decimal("10.05")} for i in range(1, 6)]
    result = run(db.call(CallRequest(operation="add_many", spec={}, params={"rows": rows})))
    assert result.output == {"rowcount": 5}
    assert result.meta["rowcount"] == 5
    more = [{"id": 10, "name": HOSTILE, "credit": None}]
    assert call(db, "add_many", {"rows": more}) == {"rowcount": 1}
    in_params = {"params": {"rows": [{"id": 11, "name": "p", "credit": 1}]}}
    assert call(db, "add_many", in_params) == {"rowcount": 1}
    assert call(db, "add_many", {"rows": []}) == {"rowcount": 0}
    assert call(db, "count") == {"n": 7}
    assert call(db, "one", id=3) == {"id": 3, "name": "c3", "credit": Decimal("10.05")}
    assert call(db, "by_name", name=HOSTILE) == [{"id": 10, "name": HOSTILE}]


def test_insert_many_is_one_transaction(db: SqlConnector) -> None:
    rows = [{"id": 1, "name": "a", "credit": None}, {"id": 1, "name": "dup", "credit": None}]
    with pytest.raises(ConnectorError) as caught:
        call(db, "add_many", {"rows": rows})
    assert (caught.value.reason, caught.value.error_class) == ("status", "fatal")
    assert call(db, "count") == {"n": 0}


def test_insert_many_rejects_bad_rows(db: SqlConnector) -> None:
    with pytest.raises(ConnectorError, match="list of objects") as caught:
        call(db, "add_many", {"rows": "not a list"})
    assert caught.value.reason == "config"
    with pytest.raises(ConnectorError, match="row 2 is a int"):
        call(db, "add_many", {"rows": [{"id": 1, "name": "a", "credit": None}, 5]})
    with pytest.raises(ConnectorError, match=r":name in row 1"):
        call(db, "add_many", {"rows": [{"id": 1, "credit": None}]})


def test_numbers_come_back_exact(db: SqlConnector) -> None:
    add(db, 1, "a", credit=Decimal("12345678.91"), score=Decimal("0.1"))
    add(db, 2, "b", credit=Decimal("0.10"), score=0.3)
    rows = call(db, "all")
    assert rows[0]["credit"] == Decimal("12345678.91")
    assert isinstance(rows[0]["score"], Decimal)
    assert rows[0]["score"] == Decimal("0.1")  # REAL / float4 read back as the short decimal
    assert rows[1]["score"] == Decimal("0.3")
    assert rows[1]["credit"] == Decimal("0.1")
    assert all(type(value) is not float for row in rows for value in row.values())


def test_stream_yields_batches_of_batch_size(db: SqlConnector) -> None:
    call(db, "add_many", {"rows": [{"id": i, "name": f"c{i}", "credit": None} for i in range(1, 26)]})

    async def collect() -> list[list[dict[str, Any]]]:
        request = CallRequest(operation="stream_all", spec={})
        return [batch async for batch in db.stream(request)]

    batches = run(collect())
    assert [len(batch) for batch in batches] == [10, 10, 5]
    assert [row["id"] for batch in batches for row in batch] == list(range(1, 26))

    result = run(db.call(CallRequest(operation="stream_all", spec={})))
    assert result.output == [{"id": i} for i in range(1, 26)]
    assert result.meta["batches"] == 3


def test_stream_uses_the_connection_batch_size(backend: str, make: Make) -> None:
    db = make(backend, OPERATIONS, batch_size=4)
    call(db, "setup")
    call(db, "add_many", {"rows": [{"id": i, "name": "n", "credit": None} for i in range(9)]})

    async def sizes() -> list[int]:
        return [len(batch) async for batch in db.stream(CallRequest(operation="all", spec={}))]

    assert run(sizes()) == [4, 4, 1]


def test_closing_a_stream_early_returns_its_connection(backend: str, make: Make) -> None:
    db = make(backend, OPERATIONS, pool_size=1, timeout="5s")
    call(db, "setup")
    call(db, "add_many", {"rows": [{"id": i, "name": "n", "credit": None} for i in range(30)]})

    async def first_batch_then_more() -> tuple[int, Any]:
        async with contextlib.aclosing(db.stream(CallRequest(operation="stream_all", spec={}))) as batches:
            first = await anext(batches)
        again = await db.call(CallRequest(operation="count", spec={}))
        return len(first), again.output

    assert run(first_batch_then_more()) == (10, {"n": 30})


def test_stream_refuses_write_modes(db: SqlConnector) -> None:
    async def attempt() -> None:
        async for _ in db.stream(CallRequest(operation="rename", spec={}, params={"name": "a", "below": 1})):
            pass

    with pytest.raises(ConnectorError, match="cannot stream"):
        run(attempt())


def test_integrity_error_is_fatal_with_a_clear_message(db: SqlConnector) -> None:
    add(db, 1, "a")
    with pytest.raises(ConnectorError) as caught:
        add(db, 1, "b")
    error = caught.value
    assert (error.reason, error.error_class, error.retriable) == ("status", "fatal", False)
    assert str(error).startswith("db.add: constraint violated: ")
    assert "[SQL:" not in str(error) and "parameters" not in str(error)
    with pytest.raises(ConnectorError, match="constraint violated"):
        add(db, 2, None)  # NOT NULL


def test_missing_bind_value_is_a_config_error(db: SqlConnector) -> None:
    with pytest.raises(ConnectorError, match=r"no value for bind parameter :name") as caught:
        call(db, "by_name")
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")


def test_sql_errors_are_fatal_config_errors(db: SqlConnector) -> None:
    with pytest.raises(ConnectorError) as caught:
        call(db, "nope", {"sql": "SELECT * FROM no_such_table"})
    assert (caught.value.reason, caught.value.error_class) == ("config", "fatal")
    assert "no_such_table" in str(caught.value)


def test_templated_or_changed_sql_is_refused(db: SqlConnector) -> None:
    with pytest.raises(ConnectorError, match="template") as caught:
        call(db, "adhoc", {"sql": "SELECT * FROM customers WHERE id = {{ params.id }}"})
    assert caught.value.reason == "config"
    with pytest.raises(ConnectorError, match="differs from the declared operation"):
        call(db, "all", {"sql": "DELETE FROM customers"})
    with pytest.raises(ConnectorError, match="unknown operation"):
        call(db, "undeclared")


def test_query_mode_needs_a_row_returning_statement(db: SqlConnector) -> None:
    with pytest.raises(ConnectorError, match="returns no rows") as caught:
        call(db, "x", {"sql": "DELETE FROM customers", "mode": "query"})
    assert caught.value.error_class == "fatal"


def test_dry_run_rolls_back(db: SqlConnector) -> None:
    params = {"id": 1, "name": "a", "credit": None, "score": None}
    request = CallRequest(operation="add", spec={}, params=params, dry_run=True)
    result = run(db.call(request))
    assert result.output == {"rowcount": 1}
    assert result.meta["dry_run"] is True
    assert call(db, "count") == {"n": 0}


def test_calls_run_off_the_event_loop(backend: str, make: Make) -> None:
    slow = (
        "SELECT pg_sleep(0.3) AS done"
        if backend.startswith("postgresql")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT COUNT(*) AS done FROM c"
    )
    db = make(backend, {"slow": {"sql": slow, "mode": "query_one"}})

    async def race() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            await db.call(CallRequest(operation="slow", spec={}))
            group.cancel_scope.cancel()
        return ticks

    assert run(race()) >= 5


def test_statement_timeout_is_retriable(backend: str, make: Make) -> None:
    slow = (
        "SELECT pg_sleep(5) AS done"
        if backend.startswith("postgresql")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) AS done FROM c"
    )
    db = make(backend, {"slow": {"sql": slow, "mode": "query_one"}, "fast": {"sql": "SELECT 1 AS one"}})
    with pytest.raises(ConnectorError) as caught:
        run(db.call(CallRequest(operation="slow", spec={}, timeout=0.2)))
    assert (caught.value.reason, caught.value.error_class) == ("timeout", "retriable")
    assert call(db, "fast") == [{"one": 1}]  # the connection is usable again
