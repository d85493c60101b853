"""The SQLite history: papers seen per keyword, cycles, editions, the outbox and suppressions."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from .models import Paper

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
]
VERSION = len(SCHEMA)
BOUNCE_LIMIT = 3  # permanent failures in a row that put an address on the suppression list


class StoreError(Exception):
    """The database cannot be opened or used."""


@dataclass(frozen=True, slots=True)
class Edition:
    """One rendered digest body shared by every subscriber of a keyword set."""

    id: int
    subject: str
    text: str
    html: str
    placeholders: dict[str, str]


@dataclass(frozen=True, slots=True)
class Message:
    """A planned message waiting in the outbox."""

    id: int
    cycle_id: int
    edition_id: int
    email: str
    name: str
    message_id: str
    attempts: int


def iso(moment: datetime) -> str:
    """Format a moment as a UTC ISO 8601 string that sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _paper(row: dict[str, Any]) -> Paper:
    return Paper(
        id=row["id"],
        version=row["version"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        abstract=row["abstract"],
        comment=row["comment"],
        published=datetime.fromisoformat(row["published"]),
        updated=datetime.fromisoformat(row["updated"]),
        primary_category=row["primary_category"],
        categories=tuple(json.loads(row["categories"])),
        doi=row["doi"],
        journal_ref=row["journal_ref"],
    )


class Store:
    """The only owner of the SQLite database."""

    def __init__(self, path: Path, *, timeout: float = 30.0):
        self.path = path
        self.timeout = timeout
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=timeout)
            self.db = sqlite_utils.Database(conn)
            with self.db.ensure_autocommit_on():
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: {exc}") from None

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
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
            for number in range(version, VERSION):
                log.info("migrating %s to schema %d", self.path, number + 1)
                for statement in SCHEMA[number].split(";"):
                    if statement.strip():
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
            return StoreError(
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
            self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def secret(self, configured: str | None) -> bytes:
        """Return the signing secret: the configured one, else one kept in the database."""
        if configured:
            return configured.encode()
        with self.transaction():
            stored = self.get_meta("secret")
            if stored is None:
                stored = secrets.token_hex(32)
                self.set_meta("secret", stored)
        return stored.encode()

    # --- cycles ------------------------------------------------------------------------------

    def begin_cycle(self, now: datetime) -> int:
        """Record the start of a cycle and return its id (the caller holds the cycle lock)."""
        with self.transaction():
            # Only one cycle runs at a time, so a cycle still 'running' died with its process.
            self.db.execute("UPDATE cycles SET status = 'crashed' WHERE status = 'running'")
            table = self.db["cycles"].insert({"started_at": iso(now), "status": "running"})
        return int(table.last_pk)

    def finish_cycle(
        self, cycle_id: int, status: str, summary: dict[str, Any], now: datetime
    ) -> None:
        """Record how a cycle ended."""
        with self.transaction():
            self.db["cycles"].update(
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

    # --- history -----------------------------------------------------------------------------

    def record_keyword(
        self,
        key: str,
        papers: list[Paper],
        cycle_id: int,
        now: datetime,
        first_run_days: int,
        query: str | None = None,
    ) -> list[str]:
        """Store a keyword's fetched papers and return the ids to announce, newest first."""
        with self.transaction():
            first_run = (
                self.db.execute("SELECT 1 FROM keywords WHERE key = ?", [key]).fetchone() is None
            )
            self._upsert_papers(papers)
            known = {
                row[0]
                for row in self.db.execute("SELECT paper_id FROM seen WHERE keyword = ?", [key])
            }
            fresh = [p for p in papers if p.id not in known]
            self.db["seen"].insert_all(
                (
                    {"keyword": key, "paper_id": p.id, "cycle_id": cycle_id, "first_seen": iso(now)}
                    for p in fresh
                ),
                ignore=True,
            )
            self.db.execute(
                "INSERT INTO keywords (key, first_seen, last_success, last_count, query) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "last_success = excluded.last_success, last_count = excluded.last_count, "
                "query = excluded.query",
                [key, iso(now), iso(now), len(papers), query],
            )
        if first_run:
            horizon = now - timedelta(days=first_run_days)
            fresh = [p for p in fresh if p.updated >= horizon]
        return [p.id for p in sorted(fresh, key=lambda p: (p.updated, p.id), reverse=True)]

    def _upsert_papers(self, papers: Iterable[Paper]) -> None:
        """Insert papers, or update them when the fetched version is as new or newer."""
        for p in papers:
            row = self.db.execute(
                "SELECT version, updated FROM papers WHERE id = ?", [p.id]
            ).fetchone()
            if row and (row[0], row[1]) > (p.version, iso(p.updated)):
                continue
            self.db["papers"].upsert(
                {
                    "id": p.id,
                    "version": p.version,
                    "title": p.title,
                    "authors": json.dumps(list(p.authors)),
                    "abstract": p.abstract,
                    "comment": p.comment,
                    "published": iso(p.published),
                    "updated": iso(p.updated),
                    "primary_category": p.primary_category,
                    "categories": json.dumps(list(p.categories)),
                    "doi": p.doi,
                    "journal_ref": p.journal_ref,
                },
                pk="id",
            )

    def keyword_counts(self, queries: dict[str, str]) -> dict[str, int]:
        """Return how many papers each keyword's last fetch returned, if its query is the same."""
        return {
            key: count
            for key, count, query in self.db.execute("SELECT key, last_count, query FROM keywords")
            if query is None or queries.get(key) == query
        }

    def earlier_keywords(self, paper_ids: Iterable[str], cycle_id: int) -> dict[str, set[str]]:
        """Return, per paper, the keyword keys it was already seen under before this cycle."""
        found: dict[str, set[str]] = {}
        for paper_id in paper_ids:
            for (key,) in self.db.execute(
                "SELECT keyword FROM seen WHERE paper_id = ? AND cycle_id < ?", [paper_id, cycle_id]
            ):
                found.setdefault(paper_id, set()).add(key)
        return found

    def papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        """Return the stored papers with these ids."""
        ids = list(ids)
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT * FROM papers WHERE id IN ({marks})", chunk):
                found[row["id"]] = _paper(row)
        return found

    def recent_papers(self, key: str, limit: int) -> list[Paper]:
        """Return a keyword's most recently updated papers, newest first."""
        return [
            _paper(row)
            for row in self.db.query(
                "SELECT papers.* FROM seen JOIN papers ON papers.id = seen.paper_id "
                "WHERE seen.keyword = ? ORDER BY papers.updated DESC, papers.id DESC LIMIT ?",
                [key, limit],
            )
        ]

    # --- outbox ------------------------------------------------------------------------------

    def add_edition(
        self,
        cycle_id: int,
        keys: Iterable[str],
        papers: int,
        subject: str,
        text: str,
        html: str,
        placeholders: dict[str, str],
    ) -> int:
        """Store a rendered digest body and return its id."""
        table = self.db["editions"].insert(
            {
                "cycle_id": cycle_id,
                "keywords": json.dumps(list(keys)),
                "papers": papers,
                "subject": subject,
                "text": text,
                "html": html,
                "placeholders": json.dumps(placeholders),
            }
        )
        return int(table.last_pk)

    def edition(self, edition_id: int) -> Edition:
        """Return a stored edition."""
        row = self.db["editions"].get(edition_id)
        return Edition(
            id=row["id"],
            subject=row["subject"],
            text=row["text"],
            html=row["html"],
            placeholders=json.loads(row["placeholders"]),
        )

    def plan_messages(self, rows: Iterable[dict[str, Any]], now: datetime) -> None:
        """Add planned messages (cycle_id, edition_id, email, name, message_id) to the outbox."""
        self.db["outbox"].insert_all(
            ({**row, "planned_at": iso(now)} for row in rows), batch_size=1000
        )

    def remember_recipients(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remember which address each unsubscribe token id stands for."""
        self.db["recipients"].insert_all(
            ({"id": i, "email": e} for i, e in pairs), pk="id", replace=True, batch_size=1000
        )

    def recipient(self, token_id: str) -> str | None:
        """Return the address an unsubscribe token id stands for, or None."""
        row = self.db.execute("SELECT email FROM recipients WHERE id = ?", [token_id]).fetchone()
        return row[0] if row else None

    def pending(self) -> Iterator[Message]:
        """Yield the outbox messages not yet delivered, oldest first."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, cycle_id, edition_id, email, name, message_id, attempts FROM outbox "
                "WHERE status = 'pending' AND id > ? ORDER BY id LIMIT 500",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Message(*row)
            last = rows[-1][0]

    def count_pending(self) -> int:
        """Return how many messages wait in the outbox."""
        return self.db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]

    def mark_sent(self, message_id: int, email: str, now: datetime) -> None:
        """Record that the server accepted a message (after its 250 to DATA)."""
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                [iso(now), message_id],
            )
            self.clear_bounces(email)

    def mark_failed(self, message_id: int, error: str, permanent: bool) -> None:
        """Record a failed attempt; a permanent failure takes the message out of the outbox."""
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "status = ? WHERE id = ?",
                [error, "failed" if permanent else "pending", message_id],
            )

    def record_bounce(self, email: str, error: str, now: datetime) -> bool:
        """Count a permanent failure in a row; suppress the address at the limit (say True)."""
        key = email.casefold()
        with self.transaction():
            self.db.execute(
                "INSERT INTO bounces (email, failures, last_error, updated_at) VALUES (?, 1, ?, ?) "
                "ON CONFLICT (email) DO UPDATE SET failures = failures + 1, "
                "last_error = excluded.last_error, updated_at = excluded.updated_at",
                [key, error, iso(now)],
            )
            (failures,) = self.db.execute(
                "SELECT failures FROM bounces WHERE email = ?", [key]
            ).fetchone()
            if failures >= BOUNCE_LIMIT:
                return self.suppress(email, "bounced", now)
        return False

    def clear_bounces(self, email: str) -> None:
        """Forget an address's failures once a message to it is accepted."""
        self.db.execute("DELETE FROM bounces WHERE email = ?", [email.casefold()])

    def sent_since(self, moment: datetime) -> list[datetime]:
        """Return when each message sent after moment was accepted (for the hourly limit)."""
        return [
            datetime.fromisoformat(row[0])
            for row in self.db.execute(
                "SELECT sent_at FROM outbox WHERE sent_at > ? ORDER BY sent_at", [iso(moment)]
            )
        ]

    def mark_skipped(self, message_id: int, reason: str) -> None:
        """Take a message out of the outbox without sending it."""
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET status = 'skipped', last_error = ? WHERE id = ?",
                [reason, message_id],
            )

    # --- suppressions ------------------------------------------------------------------------

    def suppress(self, email: str, reason: str, now: datetime) -> bool:
        """Put an address on the suppression list; return False if it already was."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)",
                [email.casefold(), reason, iso(now)],
            )
        return cursor.rowcount > 0

    def unsuppress(self, email: str) -> bool:
        """Take an address off the suppression list; return False if it was not on it."""
        with self.transaction():
            cursor = self.db.execute("DELETE FROM suppressions WHERE email = ?", [email.casefold()])
        return cursor.rowcount > 0

    def suppressions(self) -> dict[str, tuple[str, datetime]]:
        """Return every suppressed address with its reason and since when."""
        return {
            email: (reason, datetime.fromisoformat(since))
            for email, reason, since in self.db.execute(
                "SELECT email, reason, created_at FROM suppressions ORDER BY email"
            )
        }

    def suppressed(self) -> set[str]:
        """Return the case-folded addresses that must get no mail."""
        return {row[0] for row in self.db.execute("SELECT email FROM suppressions")}

    def is_suppressed(self, email: str) -> bool:
        """Tell whether an address is on the suppression list."""
        return (
            self.db.execute(
                "SELECT 1 FROM suppressions WHERE email = ?", [email.casefold()]
            ).fetchone()
            is not None
        )
