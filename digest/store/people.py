"""People's own choices (topics, schedule, pause, abstracts) and web sign-ups."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict

from ..addresses import address_key
from .base import Database, iso
from .bounces import clear_late_bounces

FIELDS = (
    "key, email, name, source, topics, frequency, weekday, paused_until, abstracts, "
    "last_cycle, last_sent_on, confirmed_at, own_topics"
)


class Choices(TypedDict, total=False):
    """A person's choices from their page, as save_choices stores them (a key left out: None)."""

    topics: list[str]
    frequency: str  # "daily" or "weekly"
    weekday: int | None  # 0 is Monday, for weekly digests
    paused_until: date | None
    abstracts: str | None  # None: the list's setting


@dataclass(frozen=True, slots=True)
class Person:
    """What the database keeps of a person: their choices, and where their digests stand."""

    key: str
    email: str
    name: str
    source: str  # "csv": their row in subscribers.csv; "web": a confirmed sign-up
    topics: tuple[str, ...] | None  # None: as their subscribers.csv row says
    frequency: str | None  # "daily" (None) or "weekly"
    weekday: int | None  # 0 is Monday, for weekly digests
    paused_until: date | None
    abstracts: str | None  # None: the list's setting
    last_cycle: int | None  # the newest cycle whose news they got (or skipped, paused)
    last_sent_on: date | None  # the day of their last digest
    confirmed_at: datetime | None
    own_topics: tuple[str, ...] = ()  # their own topic lines (topics.py), as they wrote them

    @classmethod
    def of(cls, row: tuple) -> Person:
        """Build a Person from a row of FIELDS."""
        key, email, name, source, topics, frequency, weekday, paused, abstracts, *rest = row
        last_cycle, last_sent, confirmed, own = rest
        return cls(
            key, email, name, source,
            tuple(json.loads(topics)) if topics is not None else None,
            frequency, weekday,
            date.fromisoformat(paused) if paused else None,
            abstracts, last_cycle,
            date.fromisoformat(last_sent) if last_sent else None,
            datetime.fromisoformat(confirmed) if confirmed else None,
            tuple(json.loads(own)) if own else (),
        )  # fmt: skip


class People(Database):
    """Choices people made through their links, and sign-ups waiting for confirmation."""

    def people(self, keys: Iterable[str]) -> dict[str, Person]:
        """Return the people with these keys who have a row."""
        keys = list(keys)
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in self.db.execute(
                f"SELECT {FIELDS} FROM people WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ):
                found[row[0]] = Person.of(row)
        return found

    def person(self, email: str) -> Person | None:
        """Return the row of an address, if it has one."""
        return self.people([address_key(email)]).get(address_key(email))

    def web_people(self) -> Iterator[Person]:
        """Yield every confirmed web sign-up, oldest first."""
        for row in self.db.execute(
            f"SELECT {FIELDS} FROM people WHERE source = 'web' AND confirmed_at IS NOT NULL "
            "ORDER BY confirmed_at"
        ):
            yield Person.of(row)

    def save_choices(
        self, email: str, name: str, source: str, choices: Choices, now: datetime
    ) -> None:
        """Store a person's choices (topics, frequency, weekday, paused_until, abstracts)."""
        values = {
            "topics": json.dumps(list(choices["topics"])) if choices.get("topics") else None,
            "frequency": choices.get("frequency"),
            "weekday": choices.get("weekday"),
            "paused_until": _day(choices.get("paused_until")),
            "abstracts": choices.get("abstracts"),
        }
        with self.transaction():
            self.db.execute(
                "INSERT INTO people (key, email, name, source, topics, frequency, weekday, "
                "paused_until, abstracts, updated_at, last_cycle) VALUES (:key, :email, :name, "
                ":source, :topics, :frequency, :weekday, :paused_until, :abstracts, :now, "
                # Their digests so far covered everything up to the last cycle.
                "(SELECT max(id) FROM cycles WHERE planned_at IS NOT NULL)) "
                "ON CONFLICT (key) DO UPDATE SET topics = :topics, frequency = :frequency, "
                "weekday = :weekday, paused_until = :paused_until, abstracts = :abstracts, "
                "updated_at = :now, last_cycle = coalesce(last_cycle, excluded.last_cycle)",
                {"key": address_key(email), "email": email, "name": name, "source": source,
                 "now": iso(now), **values},
            )  # fmt: skip

    def save_own_topics(
        self, email: str, name: str, source: str, lines: Iterable[str], now: datetime
    ) -> None:
        """Store a person's own topic lines (none: they have none), leaving their other choices."""
        own = json.dumps(list(lines)) or None
        with self.transaction():
            self.db.execute(
                "INSERT INTO people (key, email, name, source, own_topics, updated_at, last_cycle) "
                "VALUES (:key, :email, :name, :source, :own, :now, "
                "(SELECT max(id) FROM cycles WHERE planned_at IS NOT NULL)) "
                "ON CONFLICT (key) DO UPDATE SET own_topics = :own, updated_at = :now, "
                "last_cycle = coalesce(last_cycle, excluded.last_cycle)",
                {"key": address_key(email), "email": email, "name": name, "source": source,
                 "own": None if own == "[]" else own, "now": iso(now)},
            )  # fmt: skip

    def own_topic_counts(self) -> dict[str, int]:
        """Return how many own topics each person with some has, by address key."""
        rows = self.db.execute(
            "SELECT key, json_array_length(own_topics) FROM people WHERE own_topics IS NOT NULL"
        )
        return {key: n for key, n in rows}

    def reset_choices(self, email: str, now: datetime) -> bool:
        """Forget a person's own choices: their subscribers.csv row rules again."""
        key = address_key(email)
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE people SET topics = CASE WHEN source = 'web' THEN topics END, "
                "frequency = NULL, weekday = NULL, paused_until = NULL, abstracts = NULL, "
                "updated_at = ? WHERE key = ?",
                [iso(now), key],
            )
        return cursor.rowcount > 0

    def advance(
        self, cycle_id: int, day: date, covered: Iterable[str], sent: Iterable[str]
    ) -> None:
        """Record that people's windows were covered up to this cycle (`sent`: mailed today)."""
        self.db.conn.executemany(
            "UPDATE people SET last_cycle = ? WHERE key = ?", ((cycle_id, k) for k in covered)
        )
        self.db.conn.executemany(
            "UPDATE people SET last_cycle = ?, last_sent_on = ?, paused_until = CASE WHEN "
            "paused_until <= ? THEN NULL ELSE paused_until END WHERE key = ?",
            ((cycle_id, day.isoformat(), day.isoformat(), k) for k in sent),
        )

    def forget(self, email: str, now: datetime) -> None:
        """Delete what is kept about an address but the entry that keeps it from mail."""
        key = address_key(email)
        with self.transaction():
            self.db.execute("DELETE FROM people WHERE key = ?", [key])
            self.db.execute("DELETE FROM signups WHERE key = ?", [key])
            self.db.execute("DELETE FROM bounces WHERE email = ?", [key])
            self.db.execute("DELETE FROM votes WHERE key = ?", [key])  # issue 19
            self.db.execute(
                "UPDATE OR REPLACE reports SET email = '', counts = 0 WHERE email = ?", [key]
            )
            rows = self.db.execute("SELECT id, email FROM recipients").fetchall()
            gone = [i for i, e in rows if address_key(e) == key]
            self.db.conn.executemany("DELETE FROM recipients WHERE id = ?", ((i,) for i in gone))
            self.db.execute(
                "UPDATE outbox SET email = '', name = '' WHERE email = ? COLLATE NOCASE", [email]
            )
            self.db.execute("DELETE FROM suppressions WHERE email = ?", [key])
            self.db.execute(
                "INSERT INTO suppressions (email, reason, created_at) VALUES (?, 'deleted', ?)",
                [key, iso(now)],
            )

    def deleted(self) -> set[str]:
        """Return the address keys of the people who deleted their data (their CSV rows wait
        for the operator to remove them, and count for nothing meanwhile)."""
        rows = self.db.execute("SELECT email FROM suppressions WHERE reason = 'deleted'")
        return {row[0] for row in rows}

    # --- sign-ups --------------------------------------------------------------------------

    def add_signup(
        self, nonce: str, email: str, name: str, topics: Iterable[str], now: datetime
    ) -> None:
        """Keep a sign-up until it is confirmed."""
        with self.transaction():
            self.db.table("signups").insert(
                {"nonce": nonce, "key": address_key(email), "email": email, "name": name,
                 "topics": json.dumps(list(topics)), "created_at": iso(now)}
            )  # fmt: skip

    def recent_signups(self, email: str, since: datetime) -> int:
        """Return how many sign-ups (confirmation emails) an address had since a moment."""
        return self.db.execute(
            "SELECT count(*) FROM signups WHERE key = ? AND created_at >= ?",
            [address_key(email), iso(since)],
        ).fetchone()[0]

    def confirm_signup(self, nonce: str, now: datetime) -> str | None:
        """Confirm a sign-up: the person gets digests from now on; return their address.

        Returns None for an unknown or already confirmed sign-up.
        """
        with self.transaction():
            row = self.db.execute(
                "SELECT key, email, name, topics FROM signups WHERE nonce = ? "
                "AND confirmed_at IS NULL",
                [nonce],
            ).fetchone()
            if row is None:
                return None
            key, email, name, topics = row
            self.db.execute(
                "UPDATE signups SET confirmed_at = ? WHERE nonce = ?", [iso(now), nonce]
            )
            self.db.execute(
                "INSERT INTO people (key, email, name, source, topics, confirmed_at, updated_at, "
                "last_cycle) VALUES (?, ?, ?, 'web', ?, ?, ?, (SELECT max(id) FROM cycles "
                "WHERE planned_at IS NOT NULL)) ON CONFLICT (key) DO UPDATE SET "
                "topics = excluded.topics, confirmed_at = excluded.confirmed_at, "
                "updated_at = excluded.updated_at, source = CASE WHEN people.source = 'csv' "
                "THEN 'csv' ELSE 'web' END",
                [key, email, name, topics, iso(now), iso(now)],
            )
            self.db.execute("DELETE FROM suppressions WHERE email = ?", [key])
            clear_late_bounces(self.db, key)  # they confirmed: their address takes mail
        return email

    def signup_state(self, nonce: str) -> tuple[str, bool] | None:
        """Return a sign-up's address and whether it is confirmed, or None."""
        row = self.db.execute(
            "SELECT email, confirmed_at FROM signups WHERE nonce = ?", [nonce]
        ).fetchone()
        return (row[0], row[1] is not None) if row else None

    def signup_addresses(self) -> list[str]:
        """Return the address of each sign-up kept (each once): who a web email went to."""
        return [row[0] for row in self.db.execute("SELECT DISTINCT email FROM signups")]

    def prune_signups(self, now: datetime) -> None:
        """Forget unconfirmed sign-ups older than a week."""
        with self.transaction():
            self.db.execute(
                "DELETE FROM signups WHERE confirmed_at IS NULL AND created_at < ?",
                [iso(now - timedelta(days=7))],
            )


def _day(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else None
