"""The database connection: migrating to the schema, transactions, settings, cycles."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from ..files import create_private, make_folder
from .journal import Journal
from .schema import SCHEMA, VERSION, add_functions

log = logging.getLogger(__name__)

BOUNCE_LIMIT = 3  # permanent failures in a row that put an address on the suppression list
LATE_BOUNCE_DAYS = 45  # a bounce read from the mailbox counts this long (3 weekly digests + 5 days)


class StoreError(Exception):
    """The database cannot be opened or used."""


class StoreBusy(StoreError):
    """Another process held the database's write lock for longer than the wait allowed."""


def statements(script: str) -> list[str]:
    """Split a SQL script into its statements (a trigger's body is part of its statement)."""
    found, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    if current.strip():
        found.append(current.strip())
    return found


def iso(moment: datetime) -> str:
    """Format a moment as a UTC ISO 8601 string that sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Database:
    """The connection, its schema and transactions, settings and cycles."""

    def __init__(self, path: Path, *, timeout: float = 30.0, migrate: bool = True):
        self.path = path
        self.timeout = timeout
        self.journal = Journal(path)
        try:
            make_folder(path.parent)
            create_private(path)  # 0600: it holds every address (and maybe the secret)
            conn = sqlite3.connect(path, timeout=timeout)
            self.db = sqlite_utils.Database(conn)
            with self.db.ensure_autocommit_on():
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
            add_functions(conn)
            if migrate:  # False: another connection of this process checked it at its start
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: {exc}") from None
        except OSError as exc:  # its folder cannot be made: a file in the way, no permission
            raise StoreError(
                f"{path}: cannot create its folder ({exc.strerror}); check [digest] database"
            ) from None

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def wait(self, seconds: float) -> None:
        """Let the next statements wait this long for another writer's lock (then StoreBusy)."""
        self.timeout = seconds
        self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise StoreError(
                f"{self.path} was written by a newer digest (schema {version}, this "
                f"one knows {VERSION}); upgrade digest or use another database"
            )
        if version == VERSION:
            return
        with self.transaction():
            # Another connection may have migrated while this one waited for the write lock.
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, VERSION):
                log.info("migrating %s to schema %d", self.path, number + 1)
                for statement in statements(SCHEMA[number]):
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a block in one write transaction (nested blocks become savepoints)."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._locked(exc) from None
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.db.rollback()
            raise self._locked(exc) from None

    def _locked(self, exc: sqlite3.OperationalError) -> StoreError:
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreBusy(
                f"{self.path}: still locked by another process after waiting {self.timeout:g} s "
                "(is another digest writing, or a tool holding it open?); try again later"
            )
        return StoreError(f"{self.path}: {exc}")

    @contextmanager
    def scratch(self) -> Iterator[None]:
        """Run a block in a transaction that is always rolled back (for previews)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            self.db.rollback()

    # --- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """Return a stored setting, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        with self.transaction():
            self.db.table("meta").upsert({"key": key, "value": value}, pk="key")

    def secret(self, configured: str | None) -> bytes:
        """Return the signing secret: the configured one, else one kept in the database."""
        if configured:
            return configured.encode()
        stored = self.get_meta("secret")  # a read: it never waits for a writer
        if stored is None:
            with self.transaction():
                stored = self.get_meta("secret")
                if stored is None:
                    stored = secrets.token_hex(32)
                    self.set_meta("secret", stored)
        return stored.encode()

    def secret_record(self) -> tuple[str | None, str | None, str | None]:
        """Return the fingerprint of the secret that signed the mail sent, since when, and the
        secret kept in the database (None where there is none); write nothing."""
        return (
            self.get_meta("secret_fingerprint"),
            self.get_meta("secret_since"),
            self.get_meta("secret"),
        )

    def record_secret(self, fingerprint: str, now: datetime) -> None:
        """Remember which secret signs the mail from now on."""
        with self.transaction():
            self.set_meta("secret_fingerprint", fingerprint)
            self.set_meta("secret_since", iso(now))

    # --- cycles ------------------------------------------------------------------------------

    def begin_cycle(self, now: datetime) -> int:
        """Record the start of a cycle and return its id (the caller holds the cycle lock)."""
        with self.transaction():
            # Only one cycle runs at a time, so a cycle still 'running' died with its process.
            self.db.execute("UPDATE cycles SET status = 'crashed' WHERE status = 'running'")
            # What a cycle planned before it died unplanned is dropped: its papers are not in
            # the history, so they are news again now.
            unplanned = "SELECT id FROM cycles WHERE planned_at IS NULL"
            self.db.execute(f"DELETE FROM outbox WHERE cycle_id IN ({unplanned})")
            self.db.execute(f"DELETE FROM editions WHERE cycle_id IN ({unplanned})")
            table = self.db.table("cycles").insert({"started_at": iso(now), "status": "running"})
        assert table.last_pk is not None  # an insert of one row sets it
        return int(table.last_pk)

    def mark_planned(self, cycle_id: int, now: datetime) -> None:
        """Make a cycle's planned messages visible to the send phase."""
        with self.transaction():
            self.db.table("cycles").update(cycle_id, {"planned_at": iso(now)})

    def finish_cycle(
        self, cycle_id: int, status: str, summary: dict[str, Any], now: datetime
    ) -> None:
        """Record how a cycle ended."""
        with self.transaction():
            self.db.table("cycles").update(
                cycle_id,
                {"finished_at": iso(now), "status": status, "summary": json.dumps(summary)},
            )
            if status in ("ok", "partial"):
                self.set_meta("last_cycle_at", iso(now))

    def last_success(self) -> datetime | None:
        """Return when the last cycle that ran to its end (ok or partial) finished."""
        value = self.get_meta("last_cycle_at")
        return datetime.fromisoformat(value) if value else None

    def last_cycle(self) -> dict[str, Any] | None:
        """Return the newest finished cycle: when, how it ended, its summary."""
        row = self.db.execute(
            "SELECT id, started_at, finished_at, status, summary FROM cycles "
            "WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        summary = json.loads(row[4]) if row[4] else {}
        return {
            "id": row[0],
            "started_at": row[1],
            "finished_at": row[2],
            "status": row[3],
            **summary,
        }
