"""`FileConnector`: reads, writes, lists and moves files confined to one base directory.

Writes are atomic: the data goes to a temporary file in the target's folder, is fsynced and then
renamed over the target (`os.replace`), so readers see the old file or the new one, never a part.
Moves to the done/failed folders are renames that never overwrite: a taken name gets a number.
Every path is confined to the base directory (see `connectors.files.paths`), and all file IO runs in
a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import glob
import io
import os
import posixpath
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from connectors.files import formats
from connectors.files.folder import LocalFolder
from connectors.files.models import CsvOptions, FileAction, FileConfig, FileFormat, FileOperation, format_for
from connectors.files.paths import check_relative, is_inside, refuse, relative, resolve, resolve_entry, shown
from runtime.connector_api import (
    CallRequest,
    CallResult,
    ConnectorContext,
    ConnectorError,
    ErrorClass,
    FailureReason,
    OperationSpec,
)

_RETRIABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR}
_NEW_FILE_MODE = 0o644
_MAX_UNIQUE = 10_000


class FileConnector:
    """A live `file` connection: one base directory and the done/failed folders inside it."""

    def __init__(self, config: FileConfig, operations: Mapping[str, FileOperation], context: ConnectorContext):
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self._base_dir = os.path.join(context.project_dir, config.base_dir)

    async def aclose(self) -> None:
        """Nothing to release: files are opened and closed within each call."""

    def folder(self) -> LocalFolder:
        """The base directory as a `connector_api.Folder`, for the file trigger."""
        skipped = (self._config.done_dir, self._config.failed_dir)
        where = self._context.connection
        return LocalFolder(self._base_dir, encoding=self._config.encoding, skipped=skipped, where=where)

    async def call(self, request: CallRequest) -> CallResult:
        where = f"{self._context.connection}.{request.operation}"
        op = self._resolve(request, where)
        data = op.data if op.data is not None else (request.params or {}).get("data")
        run = functools.partial(self._run, op, data, where, request.dry_run)
        try:
            output = await anyio.to_thread.run_sync(run)
        except ConnectorError as exc:
            raise ConnectorError(
                self._context.redact(str(exc)),
                reason=exc.reason,
                error_class=exc.error_class,
            ) from None
        except RecursionError:  # e.g. `**` over a folder tree made deeper than MAX_DEPTH by something else
            message = f"{where}: folders or data nested too deeply during {op.action.value}"
            raise ConnectorError(message, reason="config", error_class="fatal") from None
        except Exception as exc:  # a bug or an unforeseen OS condition: never leak host paths
            message = f"{where}: unexpected {type(exc).__name__} during {op.action.value}"
            raise ConnectorError(message, reason="status", error_class="fatal") from None
        meta: dict[str, Any] = {"action": op.action.value}
        if request.dry_run:
            meta["dry_run"] = True
        return CallResult(output=output, meta=meta)

    # --- planning -------------------------------------------------------------------------------

    def _resolve(self, request: CallRequest, where: str) -> FileOperation:
        declared = self._operations.get(request.operation)
        if declared is None and not request.spec:
            raise ConnectorError(f"{where}: unknown operation", reason="config", error_class="fatal")
        fields = declared.model_dump(exclude_unset=True) if declared is not None else {}
        try:
            return FileOperation.model_validate({**fields, **(request.spec or {})})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'operation'}: {e['msg']}" for e in exc.errors())
            raise ConnectorError(
                self._context.redact(f"{where}: invalid operation: {problems}"),
                reason="config",
                error_class="fatal",
            ) from None

    # --- running (in a worker thread) -----------------------------------------------------------

    def _run(self, op: FileOperation, data: Any, where: str, dry_run: bool) -> Any:
        base = os.path.realpath(self._base_dir)
        if op.action is FileAction.list:
            return self._list(base, op.pattern, where)
        assert op.path is not None
        path = op.path
        fmt = op.format or format_for(path)
        options = op.csv or self._config.csv
        try:
            if op.action is FileAction.read:
                return self._read(base, path, fmt, options, where)
            if op.action is FileAction.write:
                return self._write(base, path, fmt, options, data, where, dry_run, op.escape_formulas)
            if op.action is FileAction.append:
                return self._append(base, path, fmt, options, data, where, dry_run, op.escape_formulas)
            if op.action is FileAction.delete:
                return self._delete(base, path, where, dry_run)
            folder = self._config.done_dir if op.action is FileAction.move_done else self._config.failed_dir
            return self._move(base, path, folder, where, dry_run)
        except formats.FormatError as exc:
            reason: FailureReason = "response" if op.action is FileAction.read else "config"
            raise ConnectorError(f"{where}: {shown(path)}: {exc}", reason=reason, error_class="fatal") from None
        except OSError as exc:
            raise _os_error(exc, where, f"{op.action.value} {shown(path)}") from None

    def _read(self, base: str, path: str, fmt: FileFormat, options: CsvOptions, where: str) -> Any:
        real = resolve(base, path, where)
        # O_NOFOLLOW: the checked path cannot be swapped for a link; O_NONBLOCK: a FIFO cannot hang us.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise refuse(where, f"{shown(path)} is not a regular file")
            if info.st_size > self._config.max_bytes:
                raise ConnectorError(
                    f"{where}: {shown(path)} has {info.st_size} bytes; the limit (max_bytes) is "
                    f"{self._config.max_bytes}",
                    reason="response",
                    error_class="fatal",
                )
            raw = handle.read(self._config.max_bytes + 1)
        encoding = "utf-8-sig" if _is_utf8(self._config.encoding) else self._config.encoding
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise formats.FormatError(f"not {self._config.encoding} text (byte {exc.start})") from None
        return formats.parse(text, fmt, options)

    def _write(
        self,
        base: str,
        path: str,
        fmt: FileFormat,
        options: CsvOptions,
        data: Any,
        where: str,
        dry_run: bool,
        escape: bool,
    ) -> dict[str, Any]:
        real = resolve(base, path, where)
        if data is None:
            raise refuse(where, "write needs `data` (in the operation or the step's `with:`)")
        if os.path.isdir(real):
            raise refuse(where, f"{shown(path)} is a folder")
        if dry_run:
            buffer = io.StringIO()
            formats.write(buffer, data, fmt, options, escape_formulas=escape)
            return {"path": relative(path), "bytes": len(buffer.getvalue().encode(self._config.encoding))}
        parent = os.path.dirname(real)
        os.makedirs(parent, exist_ok=True)
        mode = _mode_of(real)
        fd, temp = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(real)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding=self._config.encoding, newline="") as out:
                formats.write(out, data, fmt, options, escape_formulas=escape)
                out.flush()
                os.fsync(out.fileno())
                size = os.fstat(out.fileno()).st_size
            os.chmod(temp, mode)
            os.replace(temp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _fsync_dir(parent)
        return {"path": relative(path), "bytes": size}

    def _append(
        self,
        base: str,
        path: str,
        fmt: FileFormat,
        options: CsvOptions,
        data: Any,
        where: str,
        dry_run: bool,
        escape: bool,
    ) -> dict[str, Any]:
        if fmt is FileFormat.json:
            raise refuse(where, "append works for ndjson, csv and text; a json file is replaced with write")
        real = resolve(base, path, where)
        if data is None:
            raise refuse(where, "append needs `data` (in the operation or the step's `with:`)")
        if os.path.isdir(real):
            raise refuse(where, f"{shown(path)} is a folder")
        existing = _existing_size(real)
        buffer = io.StringIO(newline="")
        if existing and _last_byte(real) != b"\n" and fmt is not FileFormat.text:
            buffer.write("\n")
        if fmt is FileFormat.csv:
            columns = self._csv_header(real, options) if existing and options.header else None
            formats.write_csv(buffer, data, options, columns, header=options.header, escape_formulas=escape)
        else:
            formats.write(buffer, data, fmt, options, escape_formulas=escape)
        payload = buffer.getvalue().encode(self._config.encoding)
        if not dry_run and payload:
            os.makedirs(os.path.dirname(real), exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(real, flags, _NEW_FILE_MODE)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        return {"path": relative(path), "bytes": len(payload)}

    def _csv_header(self, real: str, options: CsvOptions) -> list[str]:
        encoding = "utf-8-sig" if _is_utf8(self._config.encoding) else self._config.encoding
        with open(real, encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=options.delimiter, quotechar=options.quotechar)
            return next(reader, [])

    def _list(self, base: str, pattern: str, where: str) -> list[str]:
        check_relative(pattern, where, "pattern")
        if not os.path.isdir(base):
            return []
        normalised = pattern.replace("\\", "/")
        skipped = [
            relative(folder)
            for folder in (self._config.done_dir, self._config.failed_dir)
            if not normalised.startswith(relative(folder) + "/")
        ]
        names = []
        for match in glob.glob(pattern, root_dir=base, recursive=True):
            name = relative(match)
            if any(name == folder or name.startswith(folder + "/") for folder in skipped):
                continue
            real = os.path.realpath(os.path.join(base, match))
            if is_inside(real, base) and os.path.isfile(real):
                names.append(name)
        return sorted(names)

    def _move(self, base: str, path: str, folder: str, where: str, dry_run: bool) -> dict[str, Any]:
        source = resolve_entry(base, path, where)
        if not os.path.lexists(source):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if os.path.isdir(source) and not os.path.islink(source):
            raise refuse(where, f"{shown(path)} is a folder; only files are moved")
        target_dir = resolve(base, folder, where)
        name = os.path.basename(source)
        if dry_run:
            return {"path": posixpath.join(relative(folder), name), "from": relative(path)}
        os.makedirs(target_dir, exist_ok=True)
        final = _move_unique(source, target_dir, name)
        _fsync_dir(target_dir)
        _fsync_dir(os.path.dirname(source))
        return {"path": posixpath.join(relative(folder), final), "from": relative(path)}

    def _delete(self, base: str, path: str, where: str, dry_run: bool) -> dict[str, Any]:
        entry = resolve_entry(base, path, where)
        if os.path.isdir(entry) and not os.path.islink(entry):
            raise refuse(where, f"{shown(path)} is a folder; only files are deleted")
        if not os.path.lexists(entry):
            return {"path": relative(path), "deleted": False}
        if not dry_run:
            os.unlink(entry)
            _fsync_dir(os.path.dirname(entry))
        return {"path": relative(path), "deleted": True}


# --- helpers ------------------------------------------------------------------------------------


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def _mode_of(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return _NEW_FILE_MODE


def _existing_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _last_byte(path: str) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def _fsync_dir(path: str) -> None:
    """Make a rename durable: fsync the folder that holds the entry (best effort off POSIX)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _candidates(name: str) -> list[str]:
    stem, suffix = os.path.splitext(name)
    return [name, *(f"{stem}.{n}{suffix}" for n in range(1, _MAX_UNIQUE))]


def _move_unique(source: str, target_dir: str, name: str) -> str:
    """Move `source` into `target_dir` under `name`, or `stem.N.ext` if taken; never overwrite."""
    for candidate in _candidates(name):
        target = os.path.join(target_dir, candidate)
        try:
            os.link(source, target, follow_symlinks=False)  # fails if the name is taken: no overwrite
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(target):  # no hard links here: check, then rename
                continue
            os.rename(source, target)
            return candidate
        os.unlink(source)
        return candidate
    raise FileExistsError(errno.EEXIST, "no free name in the target folder")


def _os_error(exc: OSError, where: str, doing: str) -> ConnectorError:
    """A message from the errno alone: `str(OSError)` would show absolute host paths."""
    code = exc.errno or 0
    detail = os.strerror(code) if code else type(exc).__name__
    if code == errno.ENOENT:
        return ConnectorError(f"{where}: cannot {doing}: no such file", reason="status", error_class="fatal")
    if code == errno.ELOOP:
        return refuse(where, f"cannot {doing}: it became a symbolic link")
    if code in (errno.EISDIR, errno.ENOTDIR):
        return refuse(where, f"cannot {doing}: {detail}")
    if code == errno.EXDEV:
        return refuse(where, f"cannot {doing}: the target folder is on another file system")
    error_class: ErrorClass = "retriable" if code in _RETRIABLE_ERRNOS else "fatal"
    return ConnectorError(f"{where}: cannot {doing}: {detail}", reason="status", error_class=error_class)


def create(config: BaseModel, operations: Mapping[str, OperationSpec], context: ConnectorContext) -> FileConnector:
    """The `ConnectorType.create` factory of the `file` connector."""
    file_config = config if isinstance(config, FileConfig) else FileConfig.model_validate(config.model_dump())
    file_operations = {
        name: op if isinstance(op, FileOperation) else FileOperation.model_validate(op.model_dump())
        for name, op in operations.items()
    }
    return FileConnector(file_config, file_operations, context)
