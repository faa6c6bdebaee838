"""`SqlConnector`: runs an operation's fixed SQL with bound parameters on SQLite or PostgreSQL.

SQLAlchemy Core with a synchronous engine (one per Connection); every database round trip runs in a
worker thread so the event loop never blocks. SQL text is never formatted with values: each call binds
its values by name. Numbers come back exact: NUMERIC as `Decimal`, and floats (SQLite REAL, float8)
as `Decimal(repr(x))`, so `0.1` reads back as `Decimal("0.1")`.

`call()` serves every mode; `stream()` yields a `stream`/`query` operation's rows in batches of
`batch_size` from a server-side cursor, for the poll trigger and large copies.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import simplejson
from pydantic import BaseModel, ValidationError
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, RootTransaction, Row
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import TextClause

from connectors.sql.errors import Redactor, translate
from connectors.sql.models import SqlConfig, SqlMode, SqlOperation, contains_template, normalise_url
from runtime.connector_api import (
    CallRequest,
    CallResult,
    ConnectorContext,
    ConnectorError,
    OperationSpec,
    check_json_text,
)

T = TypeVar("T")
RowDict = dict[str, Any]

_STREAMABLE = (SqlMode.stream, SqlMode.query)


def _exact(value: Any) -> Any:
    return Decimal(repr(value)) if type(value) is float else value


def _row_dicts(keys: Sequence[str], rows: Sequence[Row[Any]]) -> list[RowDict]:
    return [{key: _exact(value) for key, value in zip(keys, row, strict=True)} for row in rows]


def _json_loads(data: str | bytes) -> Any:
    return check_json_text(data, simplejson.loads(data, use_decimal=True))


@dataclass
class _Plan:
    """One call, resolved: the statement, its bind values and how to run it."""

    where: str
    op: SqlOperation
    statement: TextClause
    binds: RowDict
    rows: list[RowDict] | None
    batch_size: int
    timeout: float | None
    dry_run: bool


class SqlConnector:
    """A live connection to one database (a pool behind one SQLAlchemy engine)."""

    def __init__(self, config: SqlConfig, operations: Mapping[str, SqlOperation], context: ConnectorContext) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self._statements: dict[str, tuple[TextClause, tuple[str, ...]]] = {}
        try:
            url = normalise_url(config.url, context.project_dir)
        except (ArgumentError, ValueError) as exc:
            message = context.redact(f"{context.connection}: invalid database url: {exc}")
            raise ConnectorError(message, reason="config", error_class="fatal") from None
        self._redactor = Redactor(url.password if isinstance(url.password, str) else None, context.redact)
        self._dialect = url.get_backend_name()
        try:
            self._engine = self._create_engine(url)
        except Exception as exc:
            raise translate(exc, context.connection, self._redactor) from None

    # --- engine -----------------------------------------------------------------------------------

    def _create_engine(self, url: URL) -> Engine:
        config = self._config
        common: dict[str, Any] = {"echo": config.echo, "hide_parameters": True}
        if self._dialect == "sqlite":
            connect_args: dict[str, Any] = {"check_same_thread": False}
            if config.timeout is not None:
                connect_args["timeout"] = config.timeout  # how long to wait for a lock
            if url.database in (None, "", ":memory:"):
                # One in-memory database shared by every call (tests and demos).
                return create_engine(url, poolclass=StaticPool, connect_args=connect_args, **common)
            return create_engine(url, pool_size=config.pool_size, connect_args=connect_args, **common)
        connect_args = {"connect_timeout": max(1, math.ceil(config.timeout or 10))}
        if config.timeout is not None:
            options = f"-c statement_timeout={int(config.timeout * 1000)}"
            existing = url.query.get("options")
            connect_args["options"] = f"{existing} {options}" if isinstance(existing, str) else options
        engine = create_engine(
            url,
            pool_size=config.pool_size,
            max_overflow=0,
            pool_timeout=config.timeout or 30,
            pool_pre_ping=True,
            connect_args=connect_args,
            **common,
        )
        event.listen(engine, "connect", _postgres_on_connect)
        return engine

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._engine.dispose)

    # --- calls ------------------------------------------------------------------------------------

    async def call(self, request: CallRequest) -> CallResult:
        plan = self._plan(request)
        meta: dict[str, Any] = {"dry_run": True} if plan.dry_run else {}
        if plan.op.mode is SqlMode.stream:
            rows: list[RowDict] = []
            batches = 0
            async for batch in self._stream(plan):
                rows.extend(batch)
                batches += 1
            return CallResult(output=rows, meta={**meta, "rows": len(rows), "batches": batches})
        output = await self._in_thread(plan.where, functools.partial(self._run, plan))
        if isinstance(output, list):
            meta["rows"] = len(output)
        elif isinstance(output, dict) and plan.op.mode in (SqlMode.execute, SqlMode.insert_many):
            meta["rowcount"] = output["rowcount"]
        return CallResult(output=output, meta=meta)

    async def stream(self, request: CallRequest) -> AsyncGenerator[list[RowDict], None]:
        """Yield the rows of a `stream` or `query` operation in lists of at most `batch_size` rows.

        Holds one connection and a server-side cursor until exhausted or closed; use it as
        `async with contextlib.aclosing(connector.stream(req)) as batches: async for rows in batches: ...`.
        """
        plan = self._plan(request)
        if plan.op.mode not in _STREAMABLE:
            raise self._error(plan.where, f"mode {plan.op.mode.value} cannot stream; use query or stream", "config")
        async with contextlib.aclosing(self._stream(plan)) as batches:
            async for batch in batches:
                yield batch

    async def _stream(self, plan: _Plan) -> AsyncGenerator[list[RowDict], None]:
        cursor = _Cursor(self, plan)
        try:
            await self._in_thread(plan.where, cursor.open)
            while True:
                batch = await self._in_thread(plan.where, cursor.fetch)
                if not batch:
                    break
                yield batch
            await self._in_thread(plan.where, cursor.finish)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(cursor.close)

    async def _in_thread(self, where: str, func: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(func)
        except ConnectorError:
            raise
        except Exception as exc:
            raise translate(exc, where, self._redactor) from None

    # --- planning (no IO) -------------------------------------------------------------------------

    def _error(self, where: str, message: str, reason: Any = "config") -> ConnectorError:
        return ConnectorError(self._redactor(f"{where}: {message}"), reason=reason, error_class="fatal")

    def _plan(self, request: CallRequest) -> _Plan:
        where = f"{self._context.connection}.{request.operation}"
        op = self._resolve(request, where)
        statement, names = self._statement(op.sql)
        params = request.params or {}
        rows: list[RowDict] | None = None
        if op.mode is SqlMode.insert_many:
            rows = self._rows(op, params, where)
            binds: RowDict = {}
            common = {name: v for name, v in {**params, **op.params}.items() if name in names and name != "rows"}
            rows = [self._binds(names, {**common, **row}, where, f"row {i + 1}") for i, row in enumerate(rows)]
        else:
            binds = self._binds(names, {**params, **op.params}, where, "")
        return _Plan(
            where=where,
            op=op,
            statement=statement,
            binds=binds,
            rows=rows,
            batch_size=op.batch_size or self._config.batch_size,
            timeout=request.timeout if request.timeout is not None else self._config.timeout,
            dry_run=request.dry_run,
        )

    def _resolve(self, request: CallRequest, where: str) -> SqlOperation:
        declared = self._operations.get(request.operation)
        if declared is None and not request.spec:
            raise self._error(where, "unknown operation")
        fields = declared.model_dump(exclude_unset=True) if declared is not None else {}
        try:
            op = SqlOperation.model_validate({**fields, **(request.spec or {})})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'operation'}: {e['msg']}" for e in exc.errors())
            raise self._error(where, f"invalid operation: {problems}") from None
        if declared is not None and op.sql != declared.sql:
            raise self._error(where, "the SQL text differs from the declared operation; SQL text is fixed")
        if contains_template(op.sql):
            raise self._error(where, "SQL text holds a template ({{ or {%); pass values as bound parameters")
        return op

    def _statement(self, sql: str) -> tuple[TextClause, tuple[str, ...]]:
        cached = self._statements.get(sql)
        if cached is None:
            statement = text(sql)
            cached = (statement, tuple(statement.compile().params))
            self._statements[sql] = cached
        return cached

    def _binds(self, names: tuple[str, ...], values: Mapping[str, Any], where: str, which: str) -> RowDict:
        missing = [name for name in names if name not in values]
        if missing:
            listed = ", ".join(f":{name}" for name in missing)
            raise self._error(where, f"no value for bind parameter {listed}{f' in {which}' if which else ''}")
        sqlite = self._dialect == "sqlite"
        return {name: _bind_value(values[name], sqlite) for name in names}

    def _rows(self, op: SqlOperation, params: Mapping[str, Any], where: str) -> list[RowDict]:
        rows: Any = op.rows
        if rows is None:
            rows = op.params.get("rows", params.get("rows"))
        if not isinstance(rows, list):
            raise self._error(where, f"insert_many needs `rows`: a list of objects (got {type(rows).__name__})")
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise self._error(where, f"insert_many row {i + 1} is a {type(row).__name__}, not an object")
        return rows

    # --- running (in a worker thread) -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, timeout: float | None) -> Iterator[tuple[Connection, RootTransaction]]:
        with self._engine.connect() as conn:
            transaction = conn.begin()
            try:
                self._set_timeout(conn, timeout)
                yield conn, transaction
            finally:
                if transaction.is_active:
                    transaction.rollback()

    def _set_timeout(self, conn: Connection, timeout: float | None) -> None:
        if self._dialect == "postgresql" and timeout != self._config.timeout:
            milliseconds = 0 if timeout is None else max(1, int(timeout * 1000))
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(milliseconds)})

    @contextlib.contextmanager
    def _deadline(self, conn: Connection, timeout: float | None) -> Iterator[None]:
        """SQLite has no statement timeout: interrupt the statement from its progress handler."""
        if self._dialect != "sqlite" or timeout is None:
            yield
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        deadline = time.monotonic() + timeout
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 2000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)

    def _run(self, plan: _Plan) -> Any:
        mode = plan.op.mode
        with self._transaction(plan.timeout) as (conn, transaction), self._deadline(conn, plan.timeout):
            if mode is SqlMode.insert_many:
                assert plan.rows is not None
                count = 0
                if plan.rows:
                    result = conn.execute(plan.statement, plan.rows)
                    count = result.rowcount if result.rowcount >= 0 else len(plan.rows)
                output: Any = {"rowcount": count}
            else:
                result = conn.execute(plan.statement, plan.binds)
                if mode is SqlMode.execute:
                    output = {"rowcount": result.rowcount}
                    result.close()
                else:
                    self._require_rows(plan, result)
                    keys = list(result.keys())
                    if mode is SqlMode.query_one:
                        row = result.fetchone()
                        result.close()
                        output = _row_dicts(keys, [row])[0] if row is not None else None
                    else:
                        output = _row_dicts(keys, result.fetchall())
            if plan.dry_run:
                transaction.rollback()
            else:
                transaction.commit()
            return output

    def _require_rows(self, plan: _Plan, result: CursorResult[Any]) -> None:
        if not result.returns_rows:
            raise self._error(plan.where, f"the statement returns no rows; mode {plan.op.mode.value} needs rows")


class _Cursor:
    """The state of one `stream`: a connection, its transaction and an open server-side cursor."""

    def __init__(self, connector: SqlConnector, plan: _Plan) -> None:
        self._connector = connector
        self._plan = plan
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._result: CursorResult[Any] | None = None
        self._keys: list[str] = []

    def open(self) -> None:
        plan = self._plan
        conn = self._conn = self._connector._engine.connect()
        self._transaction = conn.begin()
        self._connector._set_timeout(conn, plan.timeout)
        with self._connector._deadline(conn, plan.timeout):
            result = conn.execution_options(yield_per=plan.batch_size).execute(plan.statement, plan.binds)
        self._result = result
        self._connector._require_rows(plan, result)
        self._keys = list(result.keys())

    def fetch(self) -> list[RowDict]:
        assert self._conn is not None and self._result is not None
        with self._connector._deadline(self._conn, self._plan.timeout):
            rows = self._result.fetchmany(self._plan.batch_size)
        return _row_dicts(self._keys, rows)

    def finish(self) -> None:
        """All rows read: commit (a streamed `UPDATE ... RETURNING` keeps its effect) unless a dry run."""
        if self._result is not None:
            self._result.close()
        if self._transaction is not None and self._transaction.is_active and not self._plan.dry_run:
            self._transaction.commit()

    def close(self) -> None:
        try:
            if self._result is not None:
                self._result.close()
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()


def _bind_value(value: Any, sqlite: bool) -> Any:
    if isinstance(value, dict):
        return simplejson.dumps(value, use_decimal=True)
    if sqlite and isinstance(value, Decimal):
        return str(value)  # the sqlite3 driver has no Decimal; column affinity converts the text
    return value


def _postgres_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """JSON and JSONB columns come back with exact decimals."""
    from psycopg.types.json import set_json_loads

    set_json_loads(_json_loads, dbapi_connection)


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> SqlConnector:
    """The `ConnectorType.create` factory of the `sql` connector."""
    sql_config = config if isinstance(config, SqlConfig) else SqlConfig.model_validate(config.model_dump())
    sql_operations = {
        name: op if isinstance(op, SqlOperation) else SqlOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return SqlConnector(sql_config, sql_operations, context)
