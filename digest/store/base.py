"""The database connection: schema and migrations, transactions, settings, cycles."""

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

from ..addresses import address_key, legacy_address_key
from ..files import create_private, make_folder
from .journal import Journal

log = logging.getLogger(__name__)

SCHEMA = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE papers (
        id TEXT PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL,
        authors TEXT NOT NULL, abstract TEXT NOT NULL, comment TEXT,
        published TEXT NOT NULL, updated TEXT NOT NULL, primary_category TEXT NOT NULL,
        categories TEXT NOT NULL, doi TEXT, journal_ref TEXT);
    CREATE TABLE keywords (
        key TEXT PRIMARY KEY, first_seen TEXT NOT NULL, last_success TEXT NOT NULL,
        last_count INTEGER NOT NULL);
    CREATE TABLE seen (
        keyword TEXT NOT NULL, paper_id TEXT NOT NULL REFERENCES papers(id),
        cycle_id INTEGER NOT NULL, first_seen TEXT NOT NULL, PRIMARY KEY (keyword, paper_id));
    CREATE INDEX seen_paper ON seen (paper_id);
    CREATE TABLE cycles (
        id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, summary TEXT);
    CREATE TABLE editions (
        id INTEGER PRIMARY KEY, cycle_id INTEGER NOT NULL REFERENCES cycles(id),
        keywords TEXT NOT NULL, papers INTEGER NOT NULL, subject TEXT NOT NULL,
        text TEXT NOT NULL, html TEXT NOT NULL, placeholders TEXT NOT NULL);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, cycle_id INTEGER NOT NULL REFERENCES cycles(id),
        edition_id INTEGER NOT NULL REFERENCES editions(id), email TEXT NOT NULL,
        name TEXT NOT NULL, message_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, planned_at TEXT NOT NULL,
        sent_at TEXT);
    CREATE INDEX outbox_status ON outbox (status, id);
    CREATE TABLE recipients (id TEXT PRIMARY KEY, email TEXT NOT NULL);
    CREATE TABLE suppressions (
        email TEXT PRIMARY KEY, reason TEXT NOT NULL, created_at TEXT NOT NULL);
    """,
    """
    CREATE TABLE bounces (
        email TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_error TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
    """,
    """
    ALTER TABLE keywords ADD COLUMN query TEXT;
    """,
    """
    ALTER TABLE keywords ADD COLUMN watermark TEXT;
    UPDATE keywords SET watermark = (
        SELECT max(papers.updated) FROM seen JOIN papers ON papers.id = seen.paper_id
        WHERE seen.keyword = keywords.key);
    """,
    """
    ALTER TABLE cycles ADD COLUMN planned_at TEXT;
    UPDATE cycles SET planned_at = started_at;
    """,
    # The reading room: which papers were news (mailed) in a cycle, each keyword's papers
    # newest first without reading its whole history, and full-text search.
    """
    ALTER TABLE seen ADD COLUMN news INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE seen ADD COLUMN updated TEXT;
    UPDATE seen SET updated = (SELECT updated FROM papers WHERE papers.id = seen.paper_id);
    CREATE INDEX seen_keyword_updated ON seen (keyword, updated DESC, paper_id);
    CREATE INDEX seen_cycle ON seen (cycle_id, keyword);
    CREATE INDEX seen_keyword_cycle ON seen (keyword, cycle_id);
    CREATE VIRTUAL TABLE papers_fts USING fts5(
        title, abstract, authors, content='papers', content_rowid='rowid',
        tokenize='porter unicode61');
    CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
        INSERT INTO papers_fts (rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END;
    CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
        INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
    END;
    CREATE TRIGGER papers_fts_update AFTER UPDATE ON papers BEGIN
        INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
        INSERT INTO papers_fts (rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END;
    INSERT INTO papers_fts (papers_fts) VALUES ('rebuild');
    """,
    # People's own choices (they win over their subscribers.csv row) and web sign-ups.
    """
    CREATE TABLE people (
        key TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
        topics TEXT, frequency TEXT, weekday INTEGER, paused_until TEXT, abstracts TEXT,
        last_cycle INTEGER, last_sent_on TEXT, confirmed_at TEXT, updated_at TEXT NOT NULL);
    CREATE TABLE signups (
        nonce TEXT PRIMARY KEY, key TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL,
        topics TEXT NOT NULL, created_at TEXT NOT NULL, confirmed_at TEXT);
    CREATE INDEX signups_key ON signups (key, created_at);
    """,
    # What each mailed person's manage link shows without reading subscribers.csv.
    """
    ALTER TABLE recipients ADD COLUMN name TEXT;
    ALTER TABLE recipients ADD COLUMN topics TEXT;
    ALTER TABLE recipients ADD COLUMN source TEXT;
    """,
    # Bounces and complaints read from the bounce mailbox: one row per report and address, so
    # no report counts twice; `digest` is the Message-ID of the mail it reports on.
    """
    CREATE TABLE reports (
        message_id TEXT NOT NULL, email TEXT NOT NULL, kind TEXT NOT NULL,
        status TEXT NOT NULL, digest TEXT NOT NULL, counts INTEGER NOT NULL,
        received_at TEXT NOT NULL, PRIMARY KEY (message_id, email));
    CREATE INDEX reports_email ON reports (email, received_at);
    """,
    # The web's emails (a sign-up's confirmation or note), each with its turn (`at`, Unix
    # seconds) under [smtp] rate_limit and hourly_limit, shared with the digests' sends.
    """
    CREATE TABLE notice_sends (
        id INTEGER PRIMARY KEY, nonce TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        at REAL NOT NULL, sent_at TEXT);
    CREATE INDEX notice_sends_at ON notice_sends (at);
    """,
    # The sign-up form's limits: each form token is used once (kept until it expires), and
    # each email the form sent, by a keyed hash of the mailbox (not the address), for 30 days.
    """
    CREATE TABLE form_tokens (id TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
    CREATE INDEX form_tokens_expires ON form_tokens (expires_at);
    CREATE TABLE form_mails (mailbox TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX form_mails_mailbox ON form_mails (mailbox, at);
    CREATE INDEX form_mails_at ON form_mails (at);
    """,
    # Keys that tell look-alikes apart (a long s is not an s; before, case folding merged them):
    # address_key() and legacy_address_key() are the SQL functions Database registers. Rows that
    # keep an address get its new key (one another row has already is left alone: nothing
    # merges). Suppressions, bounces and reports keep only the old key: each address known here
    # that had it gets a copy under its own new key, so no one who unsubscribed is mailed again.
    """
    CREATE TEMP TABLE rekeyed AS
        SELECT email, legacy_address_key(email) AS old, address_key(email) AS new FROM (
            SELECT email FROM people UNION SELECT email FROM signups
            UNION SELECT email FROM recipients UNION SELECT email FROM outbox)
        WHERE address_key(email) <> legacy_address_key(email);
    UPDATE people SET key = address_key(email)
        WHERE email IN (SELECT email FROM rekeyed) AND NOT EXISTS (
            SELECT 1 FROM people AS other WHERE other.key = address_key(people.email));
    UPDATE signups SET key = address_key(email) WHERE email IN (SELECT email FROM rekeyed);
    INSERT OR IGNORE INTO suppressions (email, reason, created_at)
        SELECT rekeyed.new, reason, created_at FROM suppressions JOIN rekeyed
        ON suppressions.email = rekeyed.old;
    INSERT OR IGNORE INTO bounces (email, failures, last_error, updated_at)
        SELECT rekeyed.new, failures, last_error, updated_at FROM bounces JOIN rekeyed
        ON bounces.email = rekeyed.old;
    INSERT OR IGNORE INTO reports (message_id, email, kind, status, digest, counts, received_at)
        SELECT message_id, rekeyed.new, kind, status, digest, counts, received_at
        FROM reports JOIN rekeyed ON reports.email = rekeyed.old;
    DROP TABLE temp.rekeyed;
    """,
    # The version each person's manage links carry (none: 0): signing out raises it, and the
    # links of an older version no longer open their page. Unsubscribe links have none.
    """
    CREATE TABLE link_versions (
        key TEXT PRIMARY KEY, version INTEGER NOT NULL, revoked_at TEXT NOT NULL);
    """,
]
VERSION = len(SCHEMA)
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


def add_functions(conn: sqlite3.Connection) -> None:
    """Give a connection the SQL functions the migrations call (address_key and the old one)."""
    for function in (address_key, legacy_address_key):
        conn.create_function(function.__name__, 1, function, deterministic=True)


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
