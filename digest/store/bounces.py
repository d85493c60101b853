"""Bounces and complaints read from the bounce mailbox: each report once, counted per digest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlite_utils

from ..addresses import address_key
from .base import BOUNCE_LIMIT, LATE_BOUNCE_DAYS, Database, iso


@dataclass(frozen=True, slots=True)
class BounceFinding:
    """What one report says of one address."""

    email: str  # "" when the report names nobody we can find
    kind: str  # "bounce", "delay", "complaint" or "report"
    status: str  # the RFC 3463 status, such as "5.1.1", or ""
    digest: str  # the Message-ID of the mail it reports on (else the report's own)
    counts: bool  # a permanent failure of the address: counts toward the bounce limit


@dataclass(frozen=True, slots=True)
class Effect:
    """What recording a finding did to its address."""

    failures: int  # the address's permanent failures that count now
    suppressed: bool  # this report put the address on the suppression list
    before: str | None  # why the address was already on the list, if it was


def late_failures(db: sqlite_utils.Database, key: str, now: datetime) -> int:
    """Return how many different digests to an address bounced lately (from the mailbox)."""
    since = iso(now - timedelta(days=LATE_BOUNCE_DAYS))
    return db.execute(
        "SELECT count(DISTINCT digest) FROM reports WHERE email = ? AND counts = 1 "
        "AND received_at >= ?",
        [key, since],
    ).fetchone()[0]


def clear_late_bounces(db: sqlite_utils.Database, email: str) -> None:
    """Stop counting an address's bounces so far (it is subscribed again)."""
    db.execute("UPDATE reports SET counts = 0 WHERE email = ? AND counts = 1", [address_key(email)])


class Bounces(Database):
    """Reports read from the bounce mailbox, and what they did."""

    def report_seen(self, message_id: str) -> datetime | None:
        """Return when a report with this Message-ID was recorded, or None."""
        row = self.db.execute(
            "SELECT min(received_at) FROM reports WHERE message_id = ?", [message_id]
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def record_report(
        self, message_id: str, findings: Iterable[BounceFinding], now: datetime
    ) -> list[Effect] | None:
        """Record a report and act on it: count bounces, suppress at the limit, suppress a
        complaint at once. Return each finding's effect, or None if it was recorded before."""
        effects = []
        with self.transaction():
            if self.report_seen(message_id) is not None:
                return None
            for finding in findings:
                key = address_key(finding.email) if finding.email else ""
                self.db.execute(
                    "INSERT OR IGNORE INTO reports (message_id, email, kind, status, digest, "
                    "counts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [message_id, key, finding.kind, finding.status, finding.digest,
                     int(finding.counts and bool(key)), iso(now)],
                )  # fmt: skip
                effects.append(self._act(finding, key, now))
        return effects

    def _act(self, finding: BounceFinding, key: str, now: datetime) -> Effect:
        if not key:
            return Effect(0, False, None)
        row = self.db.execute("SELECT reason FROM suppressions WHERE email = ?", [key]).fetchone()
        before = row[0] if row else None
        failures = self.failures(key, now)
        suppressed = False
        if finding.kind == "complaint":
            suppressed = self.suppress(finding.email, "complaint", now)
        elif finding.counts and failures >= BOUNCE_LIMIT:
            suppressed = self.suppress(finding.email, "bounced", now)
        return Effect(failures, suppressed, before)

    def failures(self, key: str, now: datetime) -> int:
        """Return an address's permanent failures that count: refusals at SMTP time since the
        last accepted message, and digests bounced lately (which no acceptance clears)."""
        row = self.db.execute("SELECT failures FROM bounces WHERE email = ?", [key]).fetchone()
        return (row[0] if row else 0) + late_failures(self.db, key, now)

    if TYPE_CHECKING:  # the Outbox's, in the Store

        def suppress(self, email: str, reason: str, now: datetime) -> bool: ...
