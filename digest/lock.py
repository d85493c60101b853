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


def open_lock_file(path: Path) -> int:
    """Open (or create) a lock file beside the database; raise LockError naming why not."""
    try:
        make_folder(path.parent)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockError(
            f"cannot open the lock file {path} ({exc.strerror}); digest needs to write "
            "in the database's folder"
        ) from None


class CycleLock:
    """An exclusive flock on a file beside the database; the kernel drops it with the process."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> CycleLock:
        fd = open_lock_file(self.path)
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


class ServiceRunning(Exception):
    """A service (`digest run` or `digest serve`) has the database open, or a restore does."""


class ServiceLock:
    """A flock on a file beside the database: shared by each running service for its whole
    life, exclusive for a restore, so that a restore never pulls the database from under one."""

    def __init__(self, path: Path, exclusive: bool):
        self.path = path
        self.exclusive = exclusive
        self.fd: int | None = None

    def __enter__(self) -> ServiceLock:
        fd = open_lock_file(self.path)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            database = self.path.with_suffix("")
            if self.exclusive:
                raise ServiceRunning(
                    f"digest run or digest serve is using {database} (lock {self.path}); stop "
                    "it first (systemctl stop digest digest-web), then restore"
                ) from None
            raise ServiceRunning(
                f"a restore of {database} is under way (lock {self.path}); start digest again "
                "once it has finished"
            ) from None
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def service_lock(database: Path, exclusive: bool = False) -> ServiceLock:
    """Return the lock a service holds shared while it runs, and a restore exclusively."""
    return ServiceLock(database.with_name(database.name + ".service"), exclusive)
