"""What the operator's view reads: fetch costs, news per topic, mail, posts, the list's census."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .base import Database, iso

PLANNED = "SELECT id FROM cycles WHERE planned_at IS NOT NULL"  # as the outbox's: a whole plan


@dataclass(frozen=True, slots=True)
class FetchCost:
    """A keyword's fetches, all cycles together: requests, retries, failures, papers new."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    new: int = 0


@dataclass(frozen=True, slots=True)
class MailCounts:
    """What became of the digests: sent, refused for good, put off (each try), bounced later."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0  # tries a transient refusal put off (451, a timeout…)
    bounced: int = 0  # bounce reports read from the bounce mailbox
    skipped: int = 0  # taken out unsent (unsubscribed before their turn)
    waiting: int = 0  # planned and not sent yet


@dataclass(frozen=True)
class Counts:
    """Every number /metrics serves from the database, read at once."""

    cycles: dict[str, int]  # by status: ok, partial, error, interrupted, crashed, running
    durations: list[float]  # seconds of each finished cycle
    fetch_durations: list[float]  # seconds of each cycle's fetch phase
    last_success: datetime | None
    fetches: dict[str, FetchCost]  # by keyword key
    mails: MailCounts
    posts: dict[str, dict[str, int]]  # by channel key, then status (posted, pending, dropped)
    census: dict[str, int]  # the list by status, as the last cycle counted it
    census_day: date | None
    oldest_waiting: datetime | None  # when the oldest message still waiting was planned


@dataclass(frozen=True)
class CycleRecord:
    """One cycle as the dashboard shows it: when, how it ended, what it did and warned."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    planned_at: datetime | None
    status: str
    fetch_seconds: float | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """Return how long the cycle ran, if it finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _added(
    one: Mapping[str, tuple[int, int]], other: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """Return two sums by status (count, tries) added up."""
    found = dict(one)
    for status, (count, tries) in other.items():
        before = found.get(status, (0, 0))
        found[status] = (before[0] + count, before[1] + tries)
    return found


class Tallies(Database):
    """The numbers of the operator's view, recorded by each cycle and read at once."""

    # --- what a cycle records ------------------------------------------------------------------

    def record_fetches(
        self, cycle_id: int, rows: Iterable[Mapping[str, Any]], seconds: float
    ) -> None:
        """Record each keyword's fetch (keyword, requests, retries, failed, papers) and the
        fetch phase's time."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO fetches (cycle_id, keyword, requests, retries, failed, "
                "papers) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (cycle_id, r["keyword"], r["requests"], r["retries"], int(r["failed"]),
                     r["papers"])
                    for r in rows
                ),
            )  # fmt: skip
            self.db.execute(
                "UPDATE cycles SET fetch_seconds = ? WHERE id = ?", [round(seconds, 3), cycle_id]
            )

    def record_news(self, cycle_id: int, news: Mapping[str, int]) -> None:
        """Record how many papers were news of each keyword in a cycle."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE fetches SET new = ? WHERE cycle_id = ? AND keyword = ?",
                ((count, cycle_id, key) for key, count in news.items()),
            )

    def record_census(self, day: date, counts: Mapping[str, int]) -> None:
        """Record the list by status for a day (a later count of the same day replaces it)."""
        with self.transaction():
            self.db.execute("DELETE FROM census WHERE day = ?", [day.isoformat()])
            self.db.conn.executemany(
                "INSERT INTO census (day, status, count) VALUES (?, ?, ?)",
                ((day.isoformat(), status, count) for status, count in counts.items()),
            )

    def suppression_counts(self) -> dict[str, int]:
        """Return how many addresses are on the suppression list for each reason."""
        return dict(self.db.execute("SELECT reason, count(*) FROM suppressions GROUP BY reason"))

    def pending_signups(self, since: datetime) -> int:
        """Return how many addresses signed up since a moment and have not confirmed yet."""
        return self.db.execute(
            "SELECT count(DISTINCT key) FROM signups WHERE confirmed_at IS NULL "
            "AND created_at >= ? AND key NOT IN (SELECT key FROM signups "
            "WHERE confirmed_at IS NOT NULL)",
            [iso(since)],
        ).fetchone()[0]

    # --- what /metrics reads ------------------------------------------------------------------

    def counts(self) -> Counts:
        """Return every number /metrics serves, read in one go (one read transaction)."""
        if self.db.conn.in_transaction:
            return self._counts()
        self.db.execute("BEGIN")  # one read transaction: every number of the same moment
        try:
            return self._counts()
        finally:
            self.db.conn.rollback()

    def _counts(self) -> Counts:
        cycles = dict(self.db.execute("SELECT status, count(*) FROM cycles GROUP BY status"))
        durations, fetching = [], []
        for seconds, fetch in self.db.execute(
            "SELECT (julianday(finished_at) - julianday(started_at)) * 86400, fetch_seconds "
            "FROM cycles WHERE finished_at IS NOT NULL"
        ):
            durations.append(max(0.0, seconds))
            if fetch is not None:
                fetching.append(fetch)
        fetches = {
            key: FetchCost(requests or 0, retries or 0, failures or 0, new or 0)
            for key, requests, retries, failures, new in self.db.execute(
                "SELECT keyword, sum(requests), sum(retries), sum(failed), sum(new) "
                "FROM fetches GROUP BY keyword"
            )
        }
        posts: dict[str, dict[str, int]] = {}
        for channel, status, count in self.db.execute(
            "SELECT channel, status, count(*) FROM posts GROUP BY channel, status"
        ):
            posts.setdefault(channel, {})[status] = count
        day, census = self.latest_census()
        last = self.get_meta("last_cycle_at")
        return Counts(
            cycles=cycles,
            durations=durations,
            fetch_durations=fetching,
            last_success=_moment(last),
            fetches=fetches,
            mails=self.mail_counts(),
            posts=posts,
            census=census,
            census_day=day,
            oldest_waiting=self.oldest_waiting(),
        )

    def mail_counts(self) -> MailCounts:
        """Return what became of every digest planned so far.

        The messages of a settled cycle (older than every message still waiting, and than the
        newest cycle) never change again: their sums are kept by this connection and only
        the newer cycles' messages are read at each call (a year of a big list is millions).
        """
        row = self.db.execute(  # the oldest waiting message's cycle (ids grow with cycles)
            "SELECT cycle_id FROM outbox INDEXED BY outbox_status WHERE status = 'pending' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        waiting_since = row[0] if row else None
        (newest,) = self.db.execute("SELECT coalesce(max(id), 0) FROM cycles").fetchone()
        settled = min(newest, waiting_since or newest) - 1
        upto, kept = self._settled_mail
        if settled < upto:  # fewer cycles than before: another database (restored)
            upto, kept = 0, {}
        if settled > upto:
            kept = _added(kept, self._mail_between(upto, settled))
            self._settled_mail = (settled, kept)
        by_status = _added(kept, self._mail_between(settled, None))
        sent, failed = by_status.get("sent", (0, 0)), by_status.get("failed", (0, 0))
        tries = sum(attempts for _, attempts in by_status.values())
        (bounced,) = self.db.execute(
            "SELECT count(*) FROM reports WHERE kind = 'bounce'"
        ).fetchone()
        (waiting,) = self.db.execute(
            f"SELECT count(*) FROM outbox WHERE status = 'pending' AND cycle_id IN ({PLANNED})"
        ).fetchone()
        return MailCounts(
            sent=sent[0],
            failed=failed[0],
            deferred=max(0, tries - sent[0] - failed[0]),  # each try but the last of each
            bounced=bounced,
            skipped=by_status.get("skipped", (0, 0))[0],
            waiting=waiting,
        )

    _settled_mail: tuple[int, dict[str, tuple[int, int]]] = (0, {})  # (cycle, sums) so far

    def _mail_between(self, after: int, upto: int | None) -> dict[str, tuple[int, int]]:
        """Return the messages of the cycles after one (up to another) by status: how many,
        and their tries (a scan of the index on cycle, status and tries, not of the table)."""
        where, params = ("cycle_id > ?", [after]) if upto is None else (
            "cycle_id > ? AND cycle_id <= ?", [after, upto]
        )  # fmt: skip
        return {
            status: (count, attempts or 0)
            for status, count, attempts in self.db.execute(
                "SELECT status, count(*), sum(attempts) FROM outbox INDEXED BY outbox_cycle "
                f"WHERE {where} GROUP BY status",
                params,
            )
        }

    def oldest_waiting(self) -> datetime | None:
        """Return when the oldest message still waiting in the outbox was planned."""
        row = self.db.execute(
            "SELECT planned_at FROM outbox WHERE status = 'pending' "
            f"AND cycle_id IN ({PLANNED}) ORDER BY id LIMIT 1"
        ).fetchone()
        return _moment(row[0]) if row else None

    def latest_census(self) -> tuple[date | None, dict[str, int]]:
        """Return the day of the last census and its counts by status."""
        row = self.db.execute("SELECT max(day) FROM census").fetchone()
        if row is None or row[0] is None:
            return None, {}
        counts = dict(self.db.execute("SELECT status, count FROM census WHERE day = ?", [row[0]]))
        return date.fromisoformat(row[0]), counts

    # --- what the dashboard reads -------------------------------------------------------------

    def cycle_records(self, since: datetime) -> list[CycleRecord]:
        """Return the cycles started since a moment, oldest first."""
        return [
            CycleRecord(
                id=row[0],
                started_at=datetime.fromisoformat(row[1]),
                finished_at=_moment(row[2]),
                planned_at=_moment(row[3]),
                status=row[4],
                fetch_seconds=row[5],
                summary=json.loads(row[6]) if row[6] else {},
            )
            for row in self.db.execute(
                "SELECT id, started_at, finished_at, planned_at, status, fetch_seconds, summary "
                "FROM cycles WHERE started_at >= ? ORDER BY id",
                [iso(since)],
            )
        ]

    def news_since(self, since: datetime) -> list[tuple[int, datetime, str, int]]:
        """Return (cycle, when it recorded its news, keyword key, papers new) for each cycle's
        keywords since a moment, oldest first."""
        return [
            (cycle_id, datetime.fromisoformat(moment), key, new)
            for cycle_id, moment, key, new in self.db.execute(
                "SELECT cycles.id, coalesce(cycles.planned_at, cycles.started_at), "
                "fetches.keyword, fetches.new FROM fetches JOIN cycles "
                "ON cycles.id = fetches.cycle_id WHERE cycles.started_at >= ? ORDER BY cycles.id",
                [iso(since)],
            )
        ]

    def mails_by_cycle(self, first: int) -> dict[int, dict[str, int]]:
        """Return, for the cycles from `first` on, their messages by status and bounced later."""
        found: dict[int, dict[str, int]] = {}
        for cycle_id, status, count in self.db.execute(
            "SELECT cycle_id, status, count(*) FROM outbox WHERE cycle_id >= ? "
            "GROUP BY cycle_id, status",
            [first],
        ):
            found.setdefault(cycle_id, {})[status] = count
        for cycle_id, count in self.db.execute(
            "SELECT outbox.cycle_id, count(*) "
            "FROM reports JOIN outbox ON outbox.message_id = reports.digest "
            "WHERE reports.kind = 'bounce' AND outbox.cycle_id >= ? GROUP BY outbox.cycle_id",
            [first],
        ):
            found.setdefault(cycle_id, {})["bounced"] = count
        return found

    def census_since(self, day: date) -> list[tuple[date, dict[str, int]]]:
        """Return each day's census since a day, oldest first."""
        found: dict[str, dict[str, int]] = {}
        for when, status, count in self.db.execute(
            "SELECT day, status, count FROM census WHERE day >= ? ORDER BY day",
            [day.isoformat()],
        ):
            found.setdefault(when, {})[status] = count
        return [(date.fromisoformat(when), counts) for when, counts in found.items()]
