"""The `sftp` connector: a remote folder over SFTP (asyncssh, the `sftp` extra).

It provides a folder to the `file` trigger (files dropped by a bank or a trading partner on their
SFTP server, taken with the same semantics as a local folder) and `list`, `read` and `write`
operations for flows. The server's host key is always checked against `host_key`.
"""

from __future__ import annotations

from connectors.sftp.connector import SftpConnector, SftpFolder, create
from connectors.sftp.models import SftpAction, SftpConfig, SftpOperation
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="sftp",
    description="A remote folder over SFTP: list, read and write files; a folder for the file trigger.",
    config_model=SftpConfig,
    operation_model=SftpOperation,
    create=create,
    provides=frozenset({"folder"}),
)

__all__ = ["CONNECTOR", "SftpAction", "SftpConfig", "SftpConnector", "SftpFolder", "SftpOperation", "create"]
