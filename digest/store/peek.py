"""Read an existing database without creating, migrating or writing it (for `digest check`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path


def _peek(path: Path, sql: str, values: Sequence[str]) -> list[tuple] | None:
    """Return a query's rows from an existing database, read-only; None if it cannot be read,
    [] where the table is not there yet."""
    if not path.is_file():
        return None
    for mode in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
        except sqlite3.Error:
            continue
        try:
            return conn.execute(sql, list(values)).fetchall()
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []  # a database no digest has used yet
        finally:
            conn.close()
    return None


def peek_deleted(path: Path) -> set[str]:
    """Return the address keys of the people who deleted their data (none if unreadable)."""
    rows = _peek(path, "SELECT email FROM suppressions WHERE reason = 'deleted'", ())
    return {row[0] for row in rows or ()}


def peek_own_topics(path: Path) -> list[tuple[str, list[str]]]:
    """Return each person's own topic lines (address, lines); none if unreadable."""
    rows = _peek(path, "SELECT email, own_topics FROM people WHERE own_topics IS NOT NULL", ())
    return [(email, json.loads(lines)) for email, lines in rows or ()]


def peek_meta(path: Path, keys: Sequence[str]) -> dict[str, str] | None:
    """Return some stored settings of an existing database; None if it is missing or unreadable.

    Read-only: a user who may not write beside the database may still read it (through
    `immutable`, which skips the write-ahead log, when read-only cannot open it).
    """
    marks = ", ".join("?" for _ in keys)
    rows = _peek(path, f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
    return None if rows is None else dict(rows)
