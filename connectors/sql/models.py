"""The SQL connector's models: a Connection's `config:` and one entry under its `operations:`.

Also holds the small pure helpers the models and the validator share: `parse_duration`,
`contains_template` (SQL text must never be templated: SL035) and `normalise_url`.
"""

from __future__ import annotations

import enum
import os
import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    WithJsonSchema,
    field_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from runtime.connector_api import OperationSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BIND_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE_MARKERS = ("{{", "{%")
_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def contains_template(text: str) -> bool:
    """True if `text` holds Jinja2 markup (`{{` or `{%`); SQL text must be fixed (SL035)."""
    return any(marker in text for marker in _TEMPLATE_MARKERS)


def parse_duration(value: object) -> object:
    """`"30s"`, `"500ms"`, `"5m"`, `2.5` -> seconds as a float; other values pass through for pydantic."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use a number with a unit (500ms, 30s, 5m, 2h, 7d)")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    return value


def normalise_url(url: str, project_dir: str = ".") -> URL:
    """Parse `url`; pick psycopg 3 for PostgreSQL; anchor a relative SQLite file at `project_dir`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:") and not os.path.isabs(database):
            parsed = parsed.set(database=os.path.abspath(os.path.join(project_dir, database)))
    return parsed


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"},
            ]
        }
    ),
]


class SqlConfig(BaseModel):
    """`config:` of a Connection of type `sql`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        ...,
        description=(
            "Database URL. `sqlite:///path` is relative to the project folder (`sqlite:////abs/path` is "
            "absolute, `sqlite://` is in memory); `postgresql://user@host:5432/db` uses the psycopg 3 "
            "driver. Put the password in a secret, never in the file."
        ),
        examples=["sqlite:///data/erp.db", "postgresql://erp_reader@db.internal:5432/erp"],
    )
    pool_size: int = Field(5, ge=1, le=100, description="Connections kept open to the database.", examples=[5])
    timeout: Duration | None = Field(
        30.0,
        description=(
            "Statement timeout (also the connect and pool wait limit): `500ms`, `30s`, `5m` or seconds. "
            "A step's own `timeout` overrides it; null means no limit."
        ),
        examples=["30s"],
    )
    batch_size: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Rows fetched per round trip and per batch in `stream` mode.",
        examples=[1000],
    )
    echo: bool = Field(False, description="Log every statement (bound values are never logged).", examples=[False])

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if contains_template(value):
            return value  # rendered by the engine before the connector is created
        try:
            normalise_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        return value


class SqlMode(enum.StrEnum):
    """How a statement is run and what the call returns."""

    query = "query"  # list of row objects
    query_one = "query_one"  # the first row, or null
    execute = "execute"  # {rowcount}
    insert_many = "insert_many"  # one statement per row of `rows`, in one transaction; {rowcount}
    stream = "stream"  # rows fetched in batches of `batch_size`


class SqlOperation(OperationSpec):
    """One entry under `operations:` of a Connection of type `sql`."""

    fixed_text_fields: ClassVar[tuple[str, ...]] = ("sql",)

    sql: str = Field(
        ...,
        min_length=1,
        description=(
            "The statement, fixed text: never templated. Values go in as named bind parameters `:name` "
            "given in `params` (or the step's `with:`). Write casts as `CAST(:x AS numeric)`, "
            "not `:x::numeric`."
        ),
        examples=["SELECT id, total FROM orders WHERE customer_no = :customer_no AND updated_at > :since"],
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Bind values by parameter name; the values may be templated. Names not given here are taken "
            "from the step's `with:`. An object value is bound as JSON text."
        ),
        examples=[{"customer_no": "{{ params.customer_no }}", "since": "{{ params.since }}"}],
    )
    mode: SqlMode = Field(
        SqlMode.query,
        description=(
            "`query`: list of rows; `query_one`: first row or null; `execute`: {rowcount}; "
            "`insert_many`: run once per row of `rows`, one transaction, {rowcount}; "
            "`stream`: rows read in batches (for large reads and poll triggers)."
        ),
        examples=["query"],
    )
    rows: Annotated[list[dict[str, Any]] | str | None, SkipValidation] = Field(
        None,
        description=(
            "For `insert_many`: the list of rows (objects of bind values), usually a template. "
            "Defaults to `params.rows`, then the step's `with: {rows: ...}`."
        ),
        examples=["{{ steps.map.output }}"],
    )
    batch_size: int | None = Field(
        None, ge=1, le=1_000_000, description="Overrides the connection's `batch_size` for this operation."
    )

    @field_validator("params")
    @classmethod
    def _check_param_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [name for name in value if not _BIND_NAME.match(name)]
        if bad:
            raise ValueError(f"bind parameter names must be identifiers (letters, digits, _): {bad}")
        return value
