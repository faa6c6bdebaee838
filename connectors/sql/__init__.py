"""The `sql` connector: fixed SQL statements with bound parameters on SQLite and PostgreSQL.

A Connection of type `sql` declares a database `url` and operations whose `sql` text is fixed
(never templated; see `contains_template`) and whose values travel as named bind parameters.
"""

from __future__ import annotations

from connectors.sql.connector import SqlConnector, create
from connectors.sql.errors import classify
from connectors.sql.models import (
    SqlConfig,
    SqlMode,
    SqlOperation,
    contains_template,
    normalise_url,
    parse_duration,
)
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="sql",
    description="Runs fixed SQL statements with bound parameters on SQLite or PostgreSQL.",
    config_model=SqlConfig,
    operation_model=SqlOperation,
    create=create,
)

__all__ = [
    "CONNECTOR",
    "SqlConfig",
    "SqlConnector",
    "SqlMode",
    "SqlOperation",
    "classify",
    "contains_template",
    "create",
    "normalise_url",
    "parse_duration",
]
