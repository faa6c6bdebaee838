"""The `file` connector: read, write, append, list and move files inside one base directory.

A Connection of type `file` names a `base_dir`; every operation's `path` is confined to it. Formats:
CSV, JSON and NDJSON (exact decimals) and text. Writes are atomic; processed files move to the
`done_dir` or `failed_dir` folder.
"""

from __future__ import annotations

from connectors.files.connector import FileConnector, create
from connectors.files.models import CsvOptions, FileAction, FileConfig, FileFormat, FileOperation, format_for
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="file",
    description="Reads, writes, lists and moves CSV, JSON, NDJSON and text files inside one base folder.",
    config_model=FileConfig,
    operation_model=FileOperation,
    create=create,
    provides=frozenset({"folder"}),
)

__all__ = [
    "CONNECTOR",
    "CsvOptions",
    "FileAction",
    "FileConfig",
    "FileConnector",
    "FileFormat",
    "FileOperation",
    "create",
    "format_for",
]
