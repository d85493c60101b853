"""Copies of the database: SQLite's online backup into a file, checking a copy, restoring one."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..files import create_private, make_folder
from .base import StoreError, iso
from .schema import VERSION

TAKEN = "backup_taken_at"  # the meta key a backup records its moment in
QUEUED = (  # what waits in an outbox: planned messages not yet sent (as Outbox.count_pending)
    "SELECT count(*) FROM outbox WHERE status = 'pending' "
    "AND cycle_id IN (SELECT id FROM cycles WHERE planned_at IS NOT NULL)"
)


class BadBackup(StoreError):
    """A file is no backup digest can restore: damaged, not digest's, or from a newer digest."""


@dataclass(frozen=True)
class Snapshot:
    """What a backup holds: its schema, when it was taken, its outbox's queue, its size."""

    path: Path
    schema: int
    taken_at: datetime | None  # None: a copy made otherwise (its file's time is all there is)
    queued: int
    sent: int
    size: int


@contextlib.contextmanager
def _open(path: Path, uri_mode: str | None = None) -> Iterator[sqlite3.Connection]:
    target = f"{path.resolve().as_uri()}?mode={uri_mode}" if uri_mode else str(path)
    try:
        conn = sqlite3.connect(target, uri=bool(uri_mode), timeout=30.0)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same(path: Path, database: Path) -> bool:
    """Tell whether a path is the database or one of its companion files."""
    names = {Path(f"{database}{suffix}").resolve() for suffix in ("", "-wal", "-shm", "-journal")}
    return path.resolve() in names


def backup(database: Path, target: Path, now: datetime) -> Snapshot:
    """Copy the database into target with SQLite's online backup; return what it holds.

    One backup step copies every page inside one read transaction: in WAL mode that is a
    consistent snapshot while a cycle goes on writing. The copy is a single file (no WAL),
    0600, records when it was taken, passes an integrity check, and replaces target only then.
    """
    if not database.is_file():
        raise StoreError(f"{database}: no database there; check [digest] database")
    if _same(target, database):
        raise StoreError(f"{target} is the database itself; back it up into another file")
    make_folder(target.parent)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    create_private(partial)  # it holds every address (and maybe the secret)
    try:
        try:
            with _open(database) as source, _open(partial) as copy:
                source.backup(copy)  # pages=-1: the whole database in one step
                copy.execute("PRAGMA journal_mode=DELETE")
                copy.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [TAKEN, iso(now)]
                )
                copy.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"{database}: cannot back it up: {exc}") from None
        snapshot = inspect(partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Snapshot(target, snapshot.schema, now, snapshot.queued, snapshot.sent, snapshot.size)


def inspect(path: Path) -> Snapshot:
    """Return what a backup holds; raise BadBackup unless it is sound and this digest's."""
    with _open(path, "ro") as conn:
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            what = "damaged" if "malformed" in str(exc) else "not a database digest can read"
            raise BadBackup(f"{path}: {what} ({exc})") from None
        if problems != ["ok"]:
            shown = "; ".join(problems[:3])
            raise BadBackup(f"{path}: damaged ({len(problems)} problem(s): {shown})")
        if schema == 0:
            raise BadBackup(f"{path}: not a digest database (it has no digest schema)")
        if schema > VERSION:
            raise BadBackup(
                f"{path}: written by a newer digest (schema {schema}, this one knows {VERSION}); "
                "upgrade digest, then restore"
            )
        try:
            taken = conn.execute("SELECT value FROM meta WHERE key = ?", [TAKEN]).fetchone()
            queued = _queued(conn)
            sent = conn.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BadBackup(f"{path}: not a digest database ({exc})") from None
    return Snapshot(
        path,
        schema,
        datetime.fromisoformat(taken[0]) if taken else None,
        queued,
        sent,
        path.stat().st_size,
    )


def _queued(conn: sqlite3.Connection) -> int:
    try:
        return conn.execute(QUEUED).fetchone()[0]
    except sqlite3.OperationalError:  # a schema before cycles had planned_at (digest 0.1)
        return conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]


def set_aside(database: Path, keep: Path) -> bool:
    """Move the database and its write-ahead log to keep (replacing an older one); return
    whether there was a database. Nobody may have it open: the caller holds the locks."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{keep}{suffix}").unlink(missing_ok=True)
    if not database.exists():
        return False
    for suffix in ("-wal", ""):  # the log first: a database never stands without its log
        source = Path(f"{database}{suffix}")
        if source.exists():
            os.replace(source, f"{keep}{suffix}")
    for suffix in ("-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    _fsync(database.parent)
    return True


def restore(snapshot: Snapshot, database: Path) -> None:
    """Write a checked backup into the database's place (set aside first), and check it."""
    if _same(snapshot.path, database):
        raise StoreError(f"{snapshot.path} is the database itself: there is nothing to restore")
    if database.exists():
        raise StoreError(f"{database}: set the database aside before restoring into its place")
    make_folder(database.parent)
    create_private(database)
    try:
        with _open(snapshot.path, "ro") as source, _open(database) as target:
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
            problems = [row[0] for row in target.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        database.unlink(missing_ok=True)
        raise StoreError(f"{database}: cannot restore {snapshot.path} into it: {exc}") from None
    except BaseException:
        database.unlink(missing_ok=True)
        raise
    if problems != ["ok"]:
        raise StoreError(f"{database}: the restored copy fails its integrity check: {problems[0]}")


def suppressions_of(path: Path) -> list[tuple[str, str, datetime]] | None:
    """Return a database's suppressions (address key, reason, since when), or None if it
    cannot be read (a damaged database: what it knew is lost)."""
    if not path.is_file():
        return None
    try:
        with _open(path) as conn:
            rows = conn.execute("SELECT email, reason, created_at FROM suppressions").fetchall()
    except (StoreError, sqlite3.DatabaseError):
        return None
    return [(email, reason, datetime.fromisoformat(since)) for email, reason, since in rows]
