"""A lock file that keeps two cycles from running at once, freed when its process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class CycleRunning(Exception):
    """Another cycle (in the daemon or another process) holds the lock."""


class CycleLock:
    """An exclusive flock on a file beside the database; the kernel drops it with the process."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> CycleLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
