"""The reading room's questions: each keyword's papers, each day's news, search, feeds."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, NamedTuple

from ..models import Paper
from .base import Database, StoreError, iso
from .history import _paper

PROGRESS_STEPS = 1_000  # SQLite VM steps between two looks at the clock (microseconds)
# A paper is public unless only harvest entries saw it (the table harvest_only, by its rowid).
_PUBLIC = "papers_fts.rowid NOT IN (SELECT rowid FROM harvest_only)"


class QueryTooLong(StoreError):
    """A query ran past its deadline and was interrupted (it asked for too much work)."""


class Cycle(NamedTuple):
    """A cycle that mailed news: when it recorded them (its day), and how many were new."""

    id: int
    planned_at: datetime
    papers: int


class RoomQueries(Database):
    """Read-only queries for the web pages, each bounded by an index (search by a deadline)."""

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Interrupt the block's queries after `seconds` (SQLite's progress handler): QueryTooLong.

        Only reads belong in the block: an interrupted statement rolls its transaction back.
        """
        end = time.monotonic() + seconds
        conn = self.db.conn
        conn.set_progress_handler(lambda: time.monotonic() > end, PROGRESS_STEPS)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            raise QueryTooLong(
                f"{self.path}: a query took more than {seconds:g} s and was stopped"
            ) from None
        finally:
            conn.set_progress_handler(None, 0)

    def generation(self) -> str:
        """Return a stamp that changes whenever a cycle records news (for caches and ETags)."""
        row = self.db.execute(
            "SELECT id, planned_at FROM cycles WHERE planned_at IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return f"{row[0]}-{row[1]}" if row else "0"

    def last_change(self) -> datetime | None:
        """Return when the last cycle recorded its news."""
        row = self.db.execute(
            "SELECT max(planned_at) FROM cycles WHERE planned_at IS NOT NULL"
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def keyword_totals(self) -> dict[str, tuple[int, datetime | None]]:
        """Return, per keyword key, how many papers it has and when it last had news."""
        return {
            key: (count, datetime.fromisoformat(last) if last else None)
            for key, count, last in self.db.execute(
                "SELECT keyword, count(*), max(CASE WHEN news THEN first_seen END) "
                "FROM seen GROUP BY keyword"
            )
        }

    def keyword_size(self, key: str) -> int:
        """Return how many papers a keyword has in the history."""
        return self.db.execute("SELECT count(*) FROM seen WHERE keyword = ?", [key]).fetchone()[0]

    def news_cycles(self) -> list[Cycle]:
        """Return the cycles that mailed news, newest first, with their counts."""
        return [
            Cycle(cycle_id, datetime.fromisoformat(planned), count)
            for cycle_id, planned, count in self.db.execute(
                "SELECT cycles.id, cycles.planned_at, count(DISTINCT seen.paper_id) "
                "FROM cycles JOIN seen ON seen.cycle_id = cycles.id AND seen.news = 1 "
                "WHERE cycles.planned_at IS NOT NULL GROUP BY cycles.id ORDER BY cycles.id DESC"
            )
        ]

    def cycle_news(self, cycle_ids: list[int]) -> dict[str, list[str]]:
        """Return, per keyword key, the papers that were news in these cycles, newest first."""
        found: dict[str, list[str]] = {}
        marks = ",".join("?" * len(cycle_ids))
        for key, paper_id in self.db.execute(
            f"SELECT keyword, paper_id FROM seen WHERE cycle_id IN ({marks}) AND news = 1 "
            "ORDER BY updated DESC, paper_id DESC",
            cycle_ids,
        ):
            found.setdefault(key, []).append(paper_id)
        return found

    def news_between(self, after: int, before: int) -> dict[str, list[str]]:
        """Return, per keyword key, the papers that were news in the cycles between, newest
        cycle first."""
        found: dict[str, list[str]] = {}
        for key, paper_id in self.db.execute(
            "SELECT keyword, paper_id FROM seen WHERE cycle_id > ? AND cycle_id < ? AND news = 1 "
            "ORDER BY cycle_id DESC, updated DESC, paper_id DESC",
            [after, before],
        ):
            found.setdefault(key, []).append(paper_id)
        return found

    def previous_cycle(self, cycle_id: int) -> int:
        """Return the last cycle planned before this one (0 if none)."""
        row = self.db.execute(
            "SELECT max(id) FROM cycles WHERE planned_at IS NOT NULL AND id < ?", [cycle_id]
        ).fetchone()
        return row[0] or 0

    def cycle_day(self, cycle_id: int, zone: tzinfo) -> date | None:
        """Return the day (in a time zone) on which a cycle recorded its news."""
        moment = self.planned_at(cycle_id)
        return moment.astimezone(zone).date() if moment else None

    def planned_at(self, cycle_id: int) -> datetime | None:
        """Return when a cycle recorded its news (None: never)."""
        row = self.db.execute("SELECT planned_at FROM cycles WHERE id = ?", [cycle_id]).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def planned_cycles(self, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
        """Return the cycles that recorded their news from `start` up to (not including) `end`,
        oldest first, with when."""
        rows = self.db.execute(
            "SELECT id, planned_at FROM cycles WHERE planned_at >= ? AND planned_at < ? "
            "ORDER BY id",
            [iso(start), iso(end)],
        )
        return [(cycle_id, datetime.fromisoformat(at)) for cycle_id, at in rows]

    def edition_topics(self) -> list[tuple[int, list[str]]]:
        """Return each rendered email's cycle and its readers' keyword keys, oldest first."""
        return [
            (cycle_id, json.loads(keywords))
            for cycle_id, keywords in self.db.execute(
                "SELECT cycle_id, keywords FROM editions ORDER BY id"
            )
        ]

    def feed(self, key: str | None, limit: int) -> list[tuple[Paper, datetime]]:
        """Return the papers most recently announced (for a keyword, or any), with when.

        Read newest cycle first through an index, stopping after the cycle that reaches
        `limit` papers, so a feed costs the same however long the history.
        """
        where, params = ("keyword = ? AND", [key]) if key else ("", [])
        found: dict[str, tuple[int, str, str]] = {}  # paper -> (cycle, updated, announced)
        last = None
        for paper_id, cycle_id, updated, announced in self.db.execute(
            "SELECT paper_id, cycle_id, updated, first_seen FROM seen "
            f"WHERE {where} news = 1 ORDER BY cycle_id DESC",
            params,
        ):
            if len(found) >= limit and cycle_id != last:
                break
            last = cycle_id
            found.setdefault(paper_id, (cycle_id, updated or "", announced))
        newest = sorted(found.items(), key=lambda item: (item[1][:2], item[0]), reverse=True)
        papers = self.papers(found)
        return [(papers[i], datetime.fromisoformat(when)) for i, (_, _, when) in newest[:limit]]

    def search(self, match: str, limit: int, offset: int) -> tuple[list[Paper], int]:
        """Return the public papers an FTS5 MATCH expression finds, best first, and how many.

        Public: seen under a keyword, not only under harvest entries ([arxiv] harvest), whose
        papers stay out of the reading room unless a topic found them too.
        """
        total = self.db.execute(
            f"SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ? AND {_PUBLIC}",
            [match],
        ).fetchone()[0]
        rows = self.db.query(  # rank the matches first; join only the page's papers
            "SELECT papers.* FROM (SELECT rowid, bm25(papers_fts, 10.0, 1.0, 5.0) AS rank "
            f"FROM papers_fts WHERE papers_fts MATCH ? AND {_PUBLIC} "
            "ORDER BY rank LIMIT ? OFFSET ?) AS hits "
            "JOIN papers ON papers.rowid = hits.rowid ORDER BY hits.rank, papers.updated DESC",
            [match, limit, offset],
        )
        return [_paper(row) for row in rows], total

    if TYPE_CHECKING:  # the History's, in the Store

        def papers(self, ids: Iterable[str]) -> dict[str, Paper]: ...
