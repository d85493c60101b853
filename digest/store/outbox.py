"""The outbox: rendered editions, planned messages, deliveries, bounces, suppressions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..addresses import address_key
from .base import BOUNCE_LIMIT, Database, iso
from .bounces import clear_late_bounces, late_failures

PLANNED = "SELECT id FROM cycles WHERE planned_at IS NOT NULL"  # cycles whose plan is whole


@dataclass(frozen=True, slots=True)
class Edition:
    """One digest body shared by every subscriber of a keyword set; a personal one is stored
    as its order (JSON, orders.Order; a recipe if an earlier version planned it), its subject
    and parts empty until made when sent."""

    id: int
    subject: str
    text: str
    html: str
    placeholders: dict[str, str]
    recipe: str | None = None
    cycle_id: int = 0  # the cycle that planned it


@dataclass(slots=True)
class PlannedEdition:
    """A personal edition planned with its messages: its order (JSON, orders.Order) written
    in the batch of its first message, where it gets its id."""

    cycle_id: int
    keys: tuple[str, ...]
    recipe: str
    id: int | None = None


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


class Outbox(Database):
    """Editions, planned messages and what became of them; who gets no mail."""

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
        with self.transaction():
            table = self.db.table("editions").insert(
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
        assert table.last_pk is not None  # an insert of one row sets it
        return int(table.last_pk)

    def add_recipe(self, cycle_id: int, keys: Iterable[str], papers: int, recipe: str) -> int:
        """Store a personal digest as its recipe or order, made when sent; return its id."""
        with self.transaction():
            return self._insert_recipe(cycle_id, keys, papers, recipe)

    def _insert_recipe(self, cycle_id: int, keys: Iterable[str], papers: int, recipe: str) -> int:
        cursor = self.db.execute(  # one row, without sqlite-utils' work: a cycle writes many
            "INSERT INTO editions (cycle_id, keywords, papers, subject, text, html, "
            "placeholders, recipe) VALUES (?, ?, ?, '', '', '', '{}', ?)",
            [cycle_id, json.dumps(list(keys)), papers, recipe],
        )
        assert cursor.lastrowid is not None  # an insert of one row sets it
        return cursor.lastrowid

    def edition(self, edition_id: int) -> Edition:
        """Return a stored edition."""
        row = self.db.table("editions").get(edition_id)
        return Edition(
            id=row["id"],
            subject=row["subject"],
            text=row["text"],
            html=row["html"],
            placeholders=json.loads(row["placeholders"]),
            recipe=row["recipe"],
            cycle_id=row["cycle_id"],
        )

    def prune_recipes(self) -> int:
        """Drop the recipes of planned editions none of whose messages waits any more (each
        sent, failed or skipped); return how many. Their rows stay, as a rendered body's do."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE editions INDEXED BY editions_recipe SET recipe = NULL "
                f"WHERE recipe IS NOT NULL AND cycle_id IN ({PLANNED}) AND id NOT IN ("
                "SELECT edition_id FROM outbox WHERE status = 'pending')"
            )
        return cursor.rowcount

    def plan_messages(self, rows: Iterable[dict[str, Any]], now: datetime) -> None:
        """Add planned messages (cycle_id, edition_id, email, name, message_id) to the outbox;
        an edition_id may be a PlannedEdition, written with the first message that names it.

        Rows are written a thousand at a time, each batch its own short transaction, and
        produced (rendered) outside any: the database is never held while planning.
        """
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({**row, "planned_at": iso(now)})
            if len(batch) >= 1000:
                self._write_messages(batch)
                batch.clear()
        self._write_messages(batch)

    def _write_messages(self, batch: list[dict[str, Any]]) -> None:
        with self.transaction():
            for row in batch:
                if isinstance(edition := row["edition_id"], PlannedEdition):
                    if edition.id is None:
                        edition.id = self._insert_recipe(
                            edition.cycle_id, edition.keys, 0, edition.recipe
                        )
                    row["edition_id"] = edition.id
            self.db.table("outbox").insert_all(batch)

    def remember_recipients(self, rows: Iterable[tuple]) -> None:
        """Remember who each token id stands for: (id, email[, name, topics, source])."""

        def record(row: tuple) -> dict[str, object]:
            token_id, email, *details = row
            found: dict[str, object] = {"id": token_id, "email": email}
            if details:
                name, topics, source = details
                found |= {"name": name, "topics": json.dumps(list(topics)), "source": source}
            return found

        with self.transaction():
            self.db.table("recipients").insert_all(
                (record(row) for row in rows), pk="id", replace=True, batch_size=1000
            )

    def recipient_details(self, token_id: str) -> tuple[str, str, list[str] | None, str] | None:
        """Return who a token id stands for: address, name, topics and source when mailed."""
        row = self.db.execute(
            "SELECT email, name, topics, source FROM recipients WHERE id = ?", [token_id]
        ).fetchone()
        if row is None:
            return None
        email, name, topics, source = row
        return email, name or "", json.loads(topics) if topics else None, source or "csv"

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
                f"WHERE status = 'pending' AND id > ? AND cycle_id IN ({PLANNED}) "
                "ORDER BY id LIMIT 500",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Message(*row)
            last = rows[-1][0]

    def count_pending(self) -> int:
        """Return how many messages wait in the outbox."""
        return self.db.execute(
            f"SELECT count(*) FROM outbox WHERE status = 'pending' AND cycle_id IN ({PLANNED})"
        ).fetchone()[0]

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
        """Count a permanent failure in a row; suppress the address at the limit (say True).

        Bounces read later from the mailbox add to the count; an accepted message clears the
        refusals, not them.
        """
        key = address_key(email)
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
            if failures + late_failures(self.db, key, now) >= BOUNCE_LIMIT:
                return self.suppress(email, "bounced", now)
        return False

    def clear_bounces(self, email: str) -> None:
        """Forget an address's failures once a message to it is accepted."""
        self.db.execute("DELETE FROM bounces WHERE email = ?", [address_key(email)])

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
                [address_key(email), reason, iso(now)],
            )
        return cursor.rowcount > 0

    def unsuppress(self, email: str) -> bool:
        """Take an address off the suppression list; return False if it was not on it."""
        with self.transaction():
            cursor = self.db.execute(
                "DELETE FROM suppressions WHERE email = ?", [address_key(email)]
            )
            clear_late_bounces(self.db, email)
        return cursor.rowcount > 0

    def unsuppress_bounced(self, since: datetime | None = None) -> list[str]:
        """Take every bounced address (suppressed since `since`) off the list; return them."""
        where = ("reason = 'bounced' AND created_at >= ?", [iso(since) if since else ""])
        with self.transaction():
            emails = [
                row[0]
                for row in self.db.execute(
                    f"SELECT email FROM suppressions WHERE {where[0]} ORDER BY email", where[1]
                )
            ]
            self.db.execute(f"DELETE FROM suppressions WHERE {where[0]}", where[1])
            for email in emails:
                self.clear_bounces(email)
                clear_late_bounces(self.db, email)
        return emails

    def suppression(self, email: str) -> tuple[str, datetime] | None:
        """Return why and since when an address gets no mail, or None."""
        row = self.db.execute(
            "SELECT reason, created_at FROM suppressions WHERE email = ?", [address_key(email)]
        ).fetchone()
        return (row[0], datetime.fromisoformat(row[1])) if row else None

    def sent_to(self, email: str) -> tuple[int, str | None]:
        """Return how many digests an address was sent, and when the last one went."""
        count, last = self.db.execute(
            "SELECT count(*), max(sent_at) FROM outbox WHERE email = ? COLLATE NOCASE "
            "AND status = 'sent'",
            [email],
        ).fetchone()
        return count, last

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
        """Tell whether an address is on the suppression list, or waits to be (the journal)."""
        key = address_key(email)
        for request in reversed(self.journal.pending()):  # the newest request wins
            if address_key(request["email"]) == key:
                return request["action"] == "unsubscribed"
        return (
            self.db.execute("SELECT 1 FROM suppressions WHERE email = ?", [key]).fetchone()
            is not None
        )

    def apply_journal(self) -> int:
        """Apply the requests the web endpoint kept while the database was locked."""
        with self.journal.draining() as requests, self.transaction():
            for request in requests:
                if request["action"] == "unsubscribed":
                    moment = datetime.fromisoformat(request["at"])
                    self.suppress(request["email"], "unsubscribed", moment)
                else:
                    self.unsuppress(request["email"])
        return len(requests)
