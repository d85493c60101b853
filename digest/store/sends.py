"""The web's emails in turn with the digests: one pace for every message the list sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .base import Database, iso

HOUR = 3600.0
KEPT = 2 * 86_400.0  # seconds a sent email's turn is remembered (only the last hour counts)


class Sends(Database):
    """Turns of the web's emails: after every send before them, digests included."""

    def send_times(self, since: float) -> list[float]:
        """Return the moments (Unix seconds) of every send after since, and every turn taken.

        A digest counts at the end of the second it was sent in (the outbox keeps seconds).
        """
        digests = self.db.execute(
            "SELECT sent_at FROM outbox WHERE sent_at > ?",
            [iso(datetime.fromtimestamp(since, UTC))],
        )
        times = [datetime.fromisoformat(row[0]).timestamp() + 1 for row in digests]
        notices = self.db.execute("SELECT at FROM notice_sends WHERE at > ?", [since])
        times += [row[0] for row in notices]
        return sorted(times)

    def notice_turn(self, now: float, interval: float, hourly: int) -> float:
        """Return when an email asked for now may go: interval after the last send, and
        never more than hourly in an hour."""
        times = self.send_times(now - HOUR)
        turn = now
        if times and interval:
            turn = max(turn, times[-1] + interval)
        if hourly and len(times) >= hourly:
            turn = max(turn, times[-hourly] + HOUR)
        return turn

    def reserve_notice(
        self, nonce: str, kind: str, now: float, interval: float, hourly: int, horizon: float
    ) -> float | None:
        """Give a sign-up's email its turn and return it; None (and keep nothing) if the
        turn is more than horizon seconds away."""
        with self.transaction():
            self.db.execute(
                "DELETE FROM notice_sends WHERE sent_at IS NOT NULL AND at < ?", [now - KEPT]
            )
            turn = self.notice_turn(now, interval, hourly)
            if turn - now > horizon:
                return None
            self.db.execute(
                "INSERT INTO notice_sends (nonce, kind, at) VALUES (?, ?, ?)", [nonce, kind, turn]
            )
        return turn

    def due_notices(self, now: float) -> list[str]:
        """Return the sign-ups whose email's turn has come, first turn first."""
        rows = self.db.execute(
            "SELECT nonce FROM notice_sends WHERE sent_at IS NULL AND at <= ? ORDER BY at", [now]
        )
        return [row[0] for row in rows]

    def next_notice(self) -> float | None:
        """Return the next turn of an email not sent yet, or None."""
        return self.db.execute("SELECT min(at) FROM notice_sends WHERE sent_at IS NULL").fetchone()[
            0
        ]

    def notice_sent(self, nonce: str, now: datetime) -> None:
        """Record that a sign-up's email went out."""
        with self.transaction():
            self.db.execute(
                "UPDATE notice_sends SET sent_at = ? WHERE nonce = ?", [iso(now), nonce]
            )

    def drop_notice(self, nonce: str) -> None:
        """Forget an email that was not sent: its turn no longer counts."""
        with self.transaction():
            self.db.execute("DELETE FROM notice_sends WHERE nonce = ?", [nonce])

    def notices_after(self, last_id: int) -> list[tuple[int, float]]:
        """Return the turns taken after the one numbered last_id (for a running cycle)."""
        rows = self.db.execute(
            "SELECT id, at FROM notice_sends WHERE id > ? ORDER BY id", [last_id]
        )
        return [(row[0], row[1]) for row in rows]

    def notice_signup(self, nonce: str) -> tuple[str, str, list[str], datetime] | None:
        """Return the unconfirmed sign-up an email is for (address, name, topics, when)."""
        row = self.db.execute(
            "SELECT email, name, topics, created_at FROM signups "
            "WHERE nonce = ? AND confirmed_at IS NULL",
            [nonce],
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2]), datetime.fromisoformat(row[3])
