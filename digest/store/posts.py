"""The posts to team chats ([[channels]]): planned with a cycle, sent in order, marked once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import Database, iso

PLANNED = "SELECT id FROM cycles WHERE planned_at IS NOT NULL"  # as the outbox's: a whole plan


@dataclass(frozen=True, slots=True)
class Post:
    """A planned post waiting for its channel: the day's news as channel_news stored it."""

    id: int
    cycle_id: int
    channel: str  # the channel's key (its name, case-folded)
    day: str
    content: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class ChannelState:
    """What became of a channel's posts: the last one posted, and those still waiting."""

    last_posted_at: str | None = None
    last_day: str | None = None  # the day of the last post that went
    waiting: int = 0
    waiting_since: str | None = None  # the day of the oldest post still waiting
    last_error: str | None = None  # of the oldest post still waiting


class Posts(Database):
    """Each channel's posts, in the order they were planned."""

    def plan_posts(self, rows: Iterable[dict[str, Any]], cycle_id: int, now: datetime) -> int:
        """Add a cycle's posts (channel, day, content); return how many.

        Called inside the transaction that marks the cycle planned: a cycle that dies before
        it leaves no post, one that gets past it leaves every post of its news.
        """
        planned = [
            {
                "cycle_id": cycle_id,
                "channel": row["channel"],
                "day": row["day"],
                "content": json.dumps(row["content"], ensure_ascii=False),
                "planned_at": iso(now),
            }
            for row in rows
        ]
        with self.transaction():
            self.db.table("posts").insert_all(planned)
        return len(planned)

    def pending_posts(self, channel: str) -> list[Post]:
        """Return a channel's posts not yet posted, oldest first."""
        rows = self.db.execute(
            "SELECT id, cycle_id, channel, day, content, attempts FROM posts "
            f"WHERE channel = ? AND status = 'pending' AND cycle_id IN ({PLANNED}) ORDER BY id",
            [channel],
        ).fetchall()
        return [Post(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def mark_posted(self, post_id: int, now: datetime) -> None:
        """Record that the service accepted a post."""
        with self.transaction():
            self.db.execute(
                "UPDATE posts SET status = 'posted', posted_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                [iso(now), post_id],
            )

    def mark_post_failed(self, post_id: int, error: str) -> None:
        """Record a failed attempt; the post stays waiting for the next one."""
        with self.transaction():
            self.db.execute(
                "UPDATE posts SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [error, post_id],
            )

    def drop_posts(self, keep: Sequence[str], now: datetime) -> int:
        """Take out the waiting posts of channels no longer in the settings; return how many."""
        marks = ", ".join("?" for _ in keep)
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE posts SET status = 'dropped', last_error = ? "
                f"WHERE status = 'pending' AND channel NOT IN ({marks})",
                [f"its channel left the settings ({iso(now)})", *keep],
            )
        return cursor.rowcount

    def channel_states(self) -> dict[str, ChannelState]:
        """Return each channel's last post and the posts it still waits for, by its key."""
        states: dict[str, dict[str, Any]] = {}
        for channel, posted_at, day in self.db.execute(
            "SELECT channel, posted_at, day FROM posts WHERE id IN ("
            "SELECT max(id) FROM posts WHERE status = 'posted' GROUP BY channel)"
        ):
            states[channel] = {"last_posted_at": posted_at, "last_day": day}
        for channel, waiting, since, error in self.db.execute(
            "SELECT channel, count(*), min(day), "
            "(SELECT last_error FROM posts AS p WHERE p.channel = posts.channel "
            "AND p.status = 'pending' ORDER BY id LIMIT 1) "
            f"FROM posts WHERE status = 'pending' AND cycle_id IN ({PLANNED}) GROUP BY channel"
        ):
            states.setdefault(channel, {}).update(
                waiting=waiting, waiting_since=since, last_error=error
            )
        return {channel: ChannelState(**values) for channel, values in states.items()}
