"""When each paper first arrived (was first news of a topic or harvest), for own topics."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime

from .base import Database, iso

FEW = 500  # papers whose arrivals are looked up one by one; of more, the newest are read in turn


class Arrivals(Database):
    """The cycle in which each paper arrived: what readers' own topics are matched against."""

    def unarrived(self, ids: Iterable[str]) -> set[str]:
        """Return those of these papers that have not arrived in an earlier cycle."""
        ids = list(ids)
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(
                row[0]
                for row in self.db.execute(
                    "SELECT paper_id FROM arrivals WHERE paper_id IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return set(ids) - known

    def record_arrivals(self, ids: Iterable[str], cycle_id: int, now: datetime) -> None:
        """Record that these papers arrived in this cycle (those known before keep their cycle)."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO arrivals (paper_id, cycle_id, arrived_at) VALUES (?, ?, ?)",
            ((i, cycle_id, iso(now)) for i in ids),
        )

    def arrivals_between(self, after: int, before: int) -> list[str]:
        """Return the papers that arrived in the cycles after `after` and before `before`."""
        rows = self.db.execute(
            "SELECT paper_id FROM arrivals WHERE cycle_id > ? AND cycle_id < ? ORDER BY paper_id",
            [after, before],
        )
        return [row[0] for row in rows]

    def arrivals_in(self, cycle_id: int) -> list[str]:
        """Return the papers that arrived in one cycle."""
        return self.arrivals_between(cycle_id - 1, cycle_id + 1)

    def arrivals_stamp(self) -> int:
        """Return a number that changes whenever a paper arrives."""
        return self.db.execute("SELECT coalesce(max(rowid), 0) FROM arrivals").fetchone()[0]

    def newest_titles(self, ids: Collection[str], limit: int) -> list[str]:
        """Return the titles of the `limit` of these papers that arrived last, newest first
        (of one cycle's, the highest id first)."""
        wanted = ids if isinstance(ids, set | frozenset) else set(ids)
        if len(wanted) <= FEW:  # looked up one by one
            rows = self.db.execute(
                "SELECT arrived_at, paper_id FROM arrivals "
                "WHERE paper_id IN (SELECT value FROM json_each(?))",
                [json.dumps(list(wanted))],
            )
            newest = sorted(rows, reverse=True)[:limit]
        else:  # many: the newest arrivals are read until they are found
            newest = []
            for at, paper_id in self.db.execute(
                "SELECT arrived_at, paper_id FROM arrivals ORDER BY arrived_at DESC"
            ):
                if len(newest) >= limit and at < newest[limit - 1][0]:
                    break
                if paper_id in wanted:
                    newest.append((at, paper_id))
            newest = sorted(newest, reverse=True)[:limit]
        titles = dict(
            self.db.execute(
                "SELECT id, title FROM papers WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps([paper_id for _, paper_id in newest])],
            ).fetchall()
        )
        return [titles[paper_id] for _, paper_id in newest if paper_id in titles]

    def arrivals_from(self, start: datetime, end: datetime) -> list[str]:
        """Return the papers that arrived from `start` up to (not including) `end`, by id."""
        rows = self.db.execute(
            "SELECT paper_id FROM arrivals WHERE arrived_at >= ? AND arrived_at < ? "
            "ORDER BY paper_id",
            [iso(start), iso(end)],
        )
        return [row[0] for row in rows]
