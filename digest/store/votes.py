"""People's 👍 / 👎 on papers: one vote per person and paper, read in bulk for ranking."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from ..addresses import address_key
from .base import Database, iso


class Vote(NamedTuple):
    """A person's vote on a paper: +1 (more like this) or -1 (less like this), and when."""

    paper_id: str
    vote: int
    voted_at: datetime


class VotedPaper(NamedTuple):
    """A vote with the paper's title, as the person's own pages list it."""

    paper_id: str
    title: str
    vote: int
    voted_at: datetime


class Votes(Database):
    """Votes by the key of a person's address (an address works too: it is keyed first)."""

    def record_vote(self, email: str, paper_id: str, vote: int, now: datetime) -> bool:
        """Record a vote, replacing the person's earlier one on the paper; return whether it
        changed anything (the same vote again keeps its time: a replay is harmless)."""
        if vote not in (1, -1):
            raise ValueError(f"a vote is 1 or -1, not {vote!r}")
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO votes (key, paper_id, vote, voted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, paper_id) DO UPDATE SET vote = excluded.vote, "
                "voted_at = excluded.voted_at WHERE vote <> excluded.vote",
                [address_key(email), paper_id, vote, iso(now)],
            )
        return cursor.rowcount > 0

    def undo_vote(self, email: str, paper_id: str, vote: int | None = None) -> bool:
        """Delete a person's vote on a paper (only if it is `vote`, when given); return whether
        there was one."""
        sql = "DELETE FROM votes WHERE key = ? AND paper_id = ?"
        values: list[str | int] = [address_key(email), paper_id]
        if vote is not None:
            sql += " AND vote = ?"
            values.append(vote)
        with self.transaction():
            cursor = self.db.execute(sql, values)
        return cursor.rowcount > 0

    def vote_on(self, email: str, paper_id: str) -> int | None:
        """Return a person's vote on a paper (1 or -1), or None."""
        row = self.db.execute(
            "SELECT vote FROM votes WHERE key = ? AND paper_id = ?", [address_key(email), paper_id]
        ).fetchone()
        return int(row[0]) if row else None

    def votes_of(self, key: str) -> list[Vote]:
        """Return a person's votes, newest first."""
        rows = self.db.execute(
            "SELECT paper_id, vote, voted_at FROM votes WHERE key = ? "
            "ORDER BY voted_at DESC, paper_id",
            [address_key(key)],
        )
        return [Vote(p, v, datetime.fromisoformat(at)) for p, v, at in rows]

    def votes_by(self, keys: Iterable[str]) -> dict[str, list[Vote]]:
        """Return the votes of many people in one query, newest first, by their address key;
        people without votes are left out."""
        wanted = json.dumps(sorted({address_key(k) for k in keys}))
        found: dict[str, list[Vote]] = {}
        rows = self.db.execute(
            "SELECT key, paper_id, vote, voted_at FROM votes "
            "WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key, voted_at DESC, paper_id",
            [wanted],
        )
        for key, paper, vote, at in rows:
            found.setdefault(key, []).append(Vote(paper, vote, datetime.fromisoformat(at)))
        return found

    def all_votes(self) -> dict[str, list[Vote]]:
        """Return everyone's votes by address key, newest first (what ranking learns from)."""
        found: dict[str, list[Vote]] = {}
        for key, paper, vote, at in self.db.execute(
            "SELECT key, paper_id, vote, voted_at FROM votes ORDER BY key, voted_at DESC, paper_id"
        ):
            found.setdefault(key, []).append(Vote(paper, vote, datetime.fromisoformat(at)))
        return found

    def voted_papers(self, email: str, limit: int | None = None) -> list[VotedPaper]:
        """Return a person's votes with the papers' titles, newest first (`limit`: so many)."""
        rows = self.db.execute(
            "SELECT votes.paper_id, papers.title, votes.vote, votes.voted_at FROM votes "
            "JOIN papers ON papers.id = votes.paper_id WHERE votes.key = ? "
            "ORDER BY votes.voted_at DESC, votes.paper_id LIMIT ?",
            [address_key(email), -1 if limit is None else limit],
        )
        return [VotedPaper(p, t, v, datetime.fromisoformat(at)) for p, t, v, at in rows]

    def count_votes(self, email: str) -> dict[int, int]:
        """Return how many papers a person voted up (1) and down (-1)."""
        rows = self.db.execute(
            "SELECT vote, count(*) FROM votes WHERE key = ? GROUP BY vote", [address_key(email)]
        )
        return {1: 0, -1: 0} | {int(vote): count for vote, count in rows}
