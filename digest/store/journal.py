"""Unsubscribes and resubscribes written while the database is locked, applied once it is free."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..files import keep_private


class Journal:
    """An append-only file beside the database: one JSON line per request, fsynced."""

    def __init__(self, database: Path):
        self.path = database.with_name(database.name + ".requests")

    @contextmanager
    def _locked(self, path: Path, blocking: bool = True) -> Iterator[int | None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            keep_private(fd)  # whatever the umask: it holds addresses
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield None
                return
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, action: str, email: str, now: datetime) -> None:
        """Keep a request (unsubscribed or resubscribed) durably until it can be applied."""
        at = now.astimezone(UTC).isoformat(timespec="seconds")
        line = json.dumps({"action": action, "email": email, "at": at}) + "\n"
        with self._locked(self.path) as fd:
            assert fd is not None
            os.write(fd, line.encode())
            os.fsync(fd)

    def pending(self) -> list[dict[str, str]]:
        """Return the requests waiting, oldest first (an empty list without a journal)."""
        return self._read()[0]

    def _read(self) -> tuple[list[dict[str, str]], int]:
        try:
            if self.path.stat().st_size == 0:
                return [], 0
        except FileNotFoundError:
            return [], 0
        with self._locked(self.path) as fd:
            assert fd is not None
            data = _whole(fd)
        return _parse(data), len(data)

    @contextmanager
    def draining(self) -> Iterator[list[dict[str, str]]]:
        """Yield the waiting requests; forget them if the block applied them without error.

        One applier at a time (others get nothing); appends go on meanwhile and are kept.
        """
        with self._locked(self.path.with_name(self.path.name + ".lock"), blocking=False) as mine:
            requests, size = self._read() if mine is not None else ([], 0)
            yield requests
            if size:
                with self._locked(self.path) as fd:
                    assert fd is not None
                    rest = _whole(fd)[size:]  # appended while the block ran
                    os.ftruncate(fd, 0)
                    os.write(fd, rest)
                    os.fsync(fd)


def _whole(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(data: bytes) -> list[dict[str, str]]:
    requests = []
    for line in data.decode(errors="replace").splitlines():
        try:
            request = json.loads(line)
        except ValueError:  # a line cut by a crash mid-write: the person can click again
            continue
        if isinstance(request, dict) and {"action", "email", "at"} <= request.keys():
            requests.append(request)
    return requests
