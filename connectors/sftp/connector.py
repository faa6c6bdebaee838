"""`SftpConnector`: a remote folder over SFTP (asyncssh), for the file trigger and for calls.

One SSH connection per live connector, opened on first use and opened again after it is lost. The
server must hold the configured host key (no way to skip the check). Paths are relative to
`base_dir`; absolute paths, `..` and NUL bytes are refused before anything is sent. The folder
(`SftpFolder`, a `connector_api.Folder`) lists files with size and mtime, streams reads from an
offset, moves files without overwriting (`rename` refuses a taken name; the next number is tried) and
writes reason files through a temporary name. Errors leave as `ConnectorError`: a lost connection or
a server that cannot be reached is retriable, and every message passes through `redact`.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import posixpath
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors.files import formats
from connectors.files.models import CsvOptions, FileFormat, format_for
from connectors.files.paths import check_relative
from connectors.sftp.models import SftpAction, SftpConfig, SftpOperation
from runtime.connector_api import (
    CallRequest,
    CallResult,
    ConnectorContext,
    ConnectorError,
    FolderEntry,
    OperationSpec,
)

CHUNK = 256 * 1024
MAX_DEPTH = 16
_MAX_UNIQUE = 10_000


def _asyncssh() -> Any:
    try:
        import asyncssh
    except ImportError:  # pragma: no cover - a packaging problem, shown clearly
        raise ConnectorError(
            "the sftp connector needs asyncssh: pip install 'syncline[sftp]'", reason="config", error_class="fatal"
        ) from None
    return asyncssh


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression over `/`-separated names: `*` and `?` stay inside one folder,
    `**/` matches any number of folders, `[...]` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class SftpConnector:
    """A live `sftp` connection (see the module docstring)."""

    def __init__(self, config: SftpConfig, operations: Mapping[str, SftpOperation], context: ConnectorContext):
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self._conn: Any = None
        self._sftp: Any = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------------------ session
    def _error(self, exc: BaseException, doing: str) -> ConnectorError:
        if isinstance(exc, ConnectorError):
            return exc
        asyncssh = _asyncssh()
        where = self._context.connection
        if isinstance(exc, asyncssh.SFTPError):
            fatal = exc.code in (asyncssh.FX_NO_SUCH_FILE, asyncssh.FX_PERMISSION_DENIED)
            if not fatal:  # e.g. the connection was lost under the SFTP session: connect again next time
                self._drop()
            message = self._context.redact(f"{where}: cannot {doing}: {exc.reason}")
            return ConnectorError(message, reason="status", error_class="fatal" if fatal else "retriable")
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return ConnectorError(
                f"{where}: the server's host key is not the configured host_key", reason="connect", error_class="fatal"
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return ConnectorError(f"{where}: login refused", reason="connect", error_class="fatal")
        self._drop()
        detail = self._context.redact(str(exc)) or type(exc).__name__
        return ConnectorError(f"{where}: cannot {doing}: {detail}", reason="connect", error_class="retriable")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._sftp = None

    async def client(self) -> Any:
        """The SFTP client, connected (again) when needed."""
        async with self._lock:
            if self._sftp is not None and self._conn is not None and not self._conn.is_closed():
                return self._sftp
            self._drop()
            asyncssh = _asyncssh()
            config = self._config
            keys = [asyncssh.import_private_key(config.private_key, config.passphrase)] if config.private_key else None
            try:
                host_key = asyncssh.import_public_key(config.host_key)
            except (asyncssh.KeyImportError, ValueError):
                raise ConnectorError(
                    f"{self._context.connection}: host_key is not a public key", reason="config", error_class="fatal"
                ) from None
            try:
                self._conn = await asyncio.wait_for(
                    asyncssh.connect(
                        config.host,
                        config.port,
                        username=config.username,
                        password=config.password,
                        client_keys=keys,
                        known_hosts=([host_key], [], []),
                        agent_path=None,
                        preferred_auth="publickey,password" if keys else "password",
                    ),
                    config.timeout,
                )
                self._sftp = await self._conn.start_sftp_client()
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise self._error(exc, "connect") from None
            return self._sftp

    def _path(self, name: str) -> str:
        check_relative(name, self._context.connection)
        return posixpath.normpath(posixpath.join(self._config.base_dir, name.replace("\\", "/")))

    async def aclose(self) -> None:
        conn = self._conn
        self._drop()
        if conn is not None:
            await conn.wait_closed()

    def folder(self) -> SftpFolder:
        """The remote base folder as a `connector_api.Folder`, for the file trigger."""
        return SftpFolder(self)

    # -------------------------------------------------------------------------------- calls
    async def call(self, request: CallRequest) -> CallResult:
        where = f"{self._context.connection}.{request.operation}"
        declared = self._operations.get(request.operation)
        fields = declared.model_dump(exclude_unset=True) if declared is not None else {}
        try:
            op = SftpOperation.model_validate({**fields, **(request.spec or {})})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'operation'}: {e['msg']}" for e in exc.errors())
            raise ConnectorError(
                self._context.redact(f"{where}: invalid operation: {problems}"), reason="config", error_class="fatal"
            ) from None
        folder = self.folder()
        if op.action is SftpAction.list:
            return CallResult(output=sorted(e.name for e in await folder.list(op.pattern)))
        assert op.path is not None
        fmt = FileFormat(op.format) if op.format else format_for(op.path)
        if op.action is SftpAction.read:
            raw = b"".join([chunk async for chunk in folder.read(op.path)])
            try:
                return CallResult(output=formats.parse(raw.decode(self._config.encoding), fmt, CsvOptions()))
            except (formats.FormatError, UnicodeDecodeError) as exc:
                raise ConnectorError(f"{where}: {op.path!r}: {exc}", reason="response", error_class="fatal") from None
        data = op.data if op.data is not None else (request.params or {}).get("data")
        buffer = io.StringIO()
        try:
            formats.write(buffer, data, fmt, CsvOptions())
        except formats.FormatError as exc:
            raise ConnectorError(f"{where}: {exc}", reason="config", error_class="fatal") from None
        if not request.dry_run:
            await folder.write_text(op.path, buffer.getvalue())
        return CallResult(output={"path": op.path, "bytes": len(buffer.getvalue().encode(self._config.encoding))})


class SftpFolder:
    """The remote base folder of an `SftpConnector` (a `connector_api.Folder`)."""

    def __init__(self, connector: SftpConnector) -> None:
        self._connector = connector
        self.encoding = connector._config.encoding

    async def list(self, pattern: str) -> list[FolderEntry]:
        connector = self._connector
        check_relative(pattern, connector._context.connection, "pattern")
        matcher = glob_regex(pattern.replace("\\", "/"))
        config = connector._config
        skipped = tuple(posixpath.normpath(f) for f in (config.done_dir, config.failed_dir))
        deep = "/" in pattern or "**" in pattern
        sftp = await connector.client()
        found: list[FolderEntry] = []
        try:
            await self._walk(sftp, "", matcher, skipped, deep, 0, found)
        except Exception as exc:
            raise connector._error(exc, "list the folder") from None
        return found

    async def _walk(
        self,
        sftp: Any,
        prefix: str,
        matcher: re.Pattern[str],
        skipped: tuple[str, ...],
        deep: bool,
        depth: int,
        found: builtins.list[FolderEntry],
    ) -> None:
        asyncssh = _asyncssh()
        path = self._connector._path(prefix) if prefix else posixpath.normpath(self._connector._config.base_dir)
        for entry in await sftp.readdir(path):
            name = entry.filename if isinstance(entry.filename, str) else entry.filename.decode("utf-8", "replace")
            if name in (".", ".."):
                continue
            relative = f"{prefix}/{name}" if prefix else name
            kind = entry.attrs.type
            if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
                if deep and depth < MAX_DEPTH and relative not in skipped:
                    await self._walk(sftp, relative, matcher, skipped, deep, depth + 1, found)
            elif kind == asyncssh.FILEXFER_TYPE_REGULAR and matcher.match(relative):
                mtime = entry.attrs.mtime or 0
                if entry.attrs.mtime_ns is not None:
                    mtime = entry.attrs.mtime_ns / 1e9
                found.append(FolderEntry(relative, int(entry.attrs.size or 0), float(mtime)))

    async def read(self, name: str, *, offset: int = 0) -> AsyncIterator[bytes]:
        connector = self._connector
        path = connector._path(name)
        sftp = await connector.client()
        try:
            handle = await sftp.open(path, "rb")
        except Exception as exc:
            raise connector._error(exc, f"open {name!r}") from None
        try:
            position = offset
            while True:
                try:
                    chunk = await handle.read(CHUNK, position)
                except Exception as exc:
                    raise connector._error(exc, f"read {name!r}") from None
                if not chunk:
                    return
                position += len(chunk)
                yield chunk
        finally:
            try:
                await handle.close()
            except Exception:  # the connection is gone already; nothing left to close
                connector._drop()

    async def move(self, name: str, folder: str) -> str:
        connector = self._connector
        source = connector._path(name)
        target_dir = connector._path(folder)
        sftp = await connector.client()
        base = posixpath.basename(source)
        stem, suffix = posixpath.splitext(base)
        try:
            await sftp.makedirs(target_dir, exist_ok=True)
            for number in range(_MAX_UNIQUE):
                candidate = base if number == 0 else f"{stem}.{number}{suffix}"
                target = posixpath.join(target_dir, candidate)
                if await sftp.exists(target):
                    continue
                await sftp.rename(source, target)  # SFTP rename refuses an existing target: no overwrite
                return posixpath.join(posixpath.normpath(folder), candidate)
        except Exception as exc:
            raise connector._error(exc, f"move {name!r}") from None
        raise ConnectorError(
            f"{connector._context.connection}: no free name in {folder!r}", reason="status", error_class="fatal"
        )

    async def write_text(self, name: str, text: str) -> None:
        connector = self._connector
        path = connector._path(name)
        temp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.tmp")
        sftp = await connector.client()
        try:
            await sftp.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
            async with sftp.open(temp, "wb") as out:
                await out.write(text.encode(self.encoding))
            if await sftp.exists(path):
                await sftp.remove(path)
            await sftp.rename(temp, path)
        except Exception as exc:
            raise connector._error(exc, f"write {name!r}") from None


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> SftpConnector:
    """The `ConnectorType.create` factory of the `sftp` connector (connects on first use)."""
    sftp_config = config if isinstance(config, SftpConfig) else SftpConfig.model_validate(config.model_dump())
    sftp_operations = {
        name: op if isinstance(op, SftpOperation) else SftpOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return SftpConnector(sftp_config, sftp_operations, context)
