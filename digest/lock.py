"""A lock file that keeps two cycles from running at once, freed when its process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .files import make_folder


class CycleRunning(Exception):
    """Another cycle (in the daemon or another process) holds the lock."""


class LockError(Exception):
    """The lock file beside the database cannot be created or opened."""


class CycleLock:
    """An exclusive flock on a file beside the database; the kernel drops it with the process."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> CycleLock:
        try:
            make_folder(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(
                f"cannot open the lock file {self.path} ({exc.strerror}); digest needs to write "
                "in the database's folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CycleRunning(
                f"another cycle is running (process {holder}, lock {self.path}); "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def lock_for(database: Path) -> CycleLock:
    """Return the cycle lock that belongs to a database file."""
    return CycleLock(database.with_name(database.name + ".lock"))
