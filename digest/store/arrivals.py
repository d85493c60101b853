"""When each paper first arrived (was first news of a topic or harvest), for own topics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .base import Database, iso


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

    def arrivals_from(self, start: datetime, end: datetime) -> list[str]:
        """Return the papers that arrived from `start` up to (not including) `end`, by id."""
        rows = self.db.execute(
            "SELECT paper_id FROM arrivals WHERE arrived_at >= ? AND arrived_at < ? "
            "ORDER BY paper_id",
            [iso(start), iso(end)],
        )
        return [row[0] for row in rows]
