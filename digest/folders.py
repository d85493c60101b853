"""Folders digest writes into: made on demand, with the file in the way named."""

from __future__ import annotations

import errno
from pathlib import Path


def make_folder(folder: Path) -> None:
    """Create a folder and its parents; raise an OSError naming a file in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        candidates = (folder, *folder.parents)
        blocker = next((p for p in candidates if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder") from None
