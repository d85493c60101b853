"""Files and folders digest writes: folders made on demand, files replaced in one step."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def make_folder(folder: Path) -> None:
    """Create a folder and its parents; raise an OSError naming a file in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        candidates = (folder, *folder.parents)
        blocker = next((p for p in candidates if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder") from None


PRIVATE = 0o600  # the database, its journals, the request journal, the outbox's mail


def create_private(path: Path) -> None:
    """Create an empty file only its owner may read or write (0600 whatever the umask),
    unless it exists; SQLite gives the database's WAL and journal files its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE)  # the umask may have taken bits away (0o400 under 0o277)
    finally:
        os.close(fd)


def keep_private(fd: int) -> None:
    """Make a file just created (still empty) 0600 whatever the umask, before data is written."""
    found = os.fstat(fd)
    if found.st_size == 0 and found.st_mode & 0o777 != PRIVATE:
        os.fchmod(fd, PRIVATE)


def write_atomically(
    path: Path, data: bytes, *, durable: bool = False, mode: int | None = None
) -> bool:
    """Replace a file's contents in one step; return False when it already had them.

    A temp file beside it is written, then renamed over it, so a reader sees the old file or
    the new one, never half of one. `durable` fsyncs the data before the rename (one precious
    file; not thousands of pages). The new file gets `mode`, or by default the mode of the file
    it replaces (0o644 for a new one). Raises OSError; the old file is then intact.
    """
    try:
        if path.read_bytes() == data:
            return False
    except (FileNotFoundError, NotADirectoryError):
        pass
    make_folder(path.parent)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True
