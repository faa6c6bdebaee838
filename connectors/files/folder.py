"""`LocalFolder`: a `file` connection's base directory as a `connector_api.Folder` (for the file trigger).

Listing, streaming reads, moves into done/failed folders and reason files, all confined to the base
directory (`connectors.files.paths`), all file IO in worker threads. Moves never overwrite: a taken
name gets a number (`report.csv` → `report.1.csv`).
"""

from __future__ import annotations

import glob
import os
import posixpath
import stat
import tempfile
from collections.abc import AsyncIterator, Callable

import anyio.to_thread

from connectors.files.paths import check_relative, is_inside, refuse, relative, resolve, resolve_entry
from runtime.connector_api import ConnectorError, FolderEntry

CHUNK = 256 * 1024


class LocalFolder:
    """The files below one base directory (see the module docstring)."""

    def __init__(self, base_dir: str, *, encoding: str, skipped: tuple[str, ...], where: str) -> None:
        self._base_dir = base_dir
        self.encoding = encoding
        self._skipped = tuple(relative(folder) for folder in skipped)
        self._where = where

    def _base(self) -> str:
        return os.path.realpath(self._base_dir)

    async def _thread(self, function: Callable[[], object]) -> object:
        try:
            return await anyio.to_thread.run_sync(function)
        except ConnectorError:
            raise
        except OSError as exc:
            detail = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            raise ConnectorError(f"{self._where}: {detail}", reason="status", error_class="retriable") from None

    async def list(self, pattern: str) -> list[FolderEntry]:
        def scan() -> list[FolderEntry]:
            check_relative(pattern, self._where, "pattern")
            base = self._base()
            if not os.path.isdir(base):
                return []
            found = []
            for match in glob.glob(pattern, root_dir=base, recursive=True):
                name = relative(match)
                if any(name == folder or name.startswith(folder + "/") for folder in self._skipped):
                    continue
                real = os.path.realpath(os.path.join(base, match))
                if not is_inside(real, base):
                    continue
                try:
                    info = os.stat(real)
                except FileNotFoundError:
                    continue  # moved away meanwhile
                if stat.S_ISREG(info.st_mode):
                    found.append(FolderEntry(name, info.st_size, info.st_mtime))
            return found

        result = await self._thread(scan)
        assert isinstance(result, list)
        return result

    async def read(self, name: str, *, offset: int = 0) -> AsyncIterator[bytes]:
        real = resolve(self._base(), name, self._where)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

        def open_file() -> int:
            fd = os.open(real, flags)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise refuse(self._where, f"{name!r} is not a regular file")
            os.lseek(fd, offset, os.SEEK_SET)
            return fd

        fd = await self._thread(open_file)
        assert isinstance(fd, int)
        try:
            while True:
                chunk = await self._thread(lambda: os.read(fd, CHUNK))
                assert isinstance(chunk, bytes)
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    async def move(self, name: str, folder: str) -> str:
        from connectors.files.connector import _fsync_dir, _move_unique

        def move() -> str:
            base = self._base()
            source = resolve_entry(base, name, self._where)
            target_dir = resolve(base, folder, self._where)
            os.makedirs(target_dir, exist_ok=True)
            final = _move_unique(source, target_dir, os.path.basename(source))
            _fsync_dir(target_dir)
            _fsync_dir(os.path.dirname(source))
            return posixpath.join(relative(folder), final)

        result = await self._thread(move)
        assert isinstance(result, str)
        return result

    async def write_text(self, name: str, text: str) -> None:
        def write() -> None:
            real = resolve(self._base(), name, self._where)
            parent = os.path.dirname(real)
            os.makedirs(parent, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=parent, prefix=".reason.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding=self.encoding) as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, real)

        await self._thread(write)
