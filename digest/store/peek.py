"""Read an existing database without creating, migrating or writing it (for `digest check`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path


def peek_meta(path: Path, keys: Sequence[str]) -> dict[str, str] | None:
    """Return some stored settings of an existing database; None if it is missing or unreadable.

    Read-only: a user who may not write beside the database may still read it (through
    `immutable`, which skips the write-ahead log, when read-only cannot open it).
    """
    if not path.is_file():
        return None
    marks = ", ".join("?" for _ in keys)
    for mode in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
        except sqlite3.Error:
            continue
        try:
            rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", list(keys))
            return dict(rows.fetchall())
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return {}  # a database no digest has used yet
        finally:
            conn.close()
    return None
