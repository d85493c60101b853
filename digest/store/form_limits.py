"""What the sign-up form's limits remember: form tokens already used, and emails it sent."""

from __future__ import annotations

from datetime import datetime

from ..addresses import mailbox_key
from .base import Database, iso

# Who asked for no more mail: the sign-up form sends them nothing for a while (see signups).
LEFT = ("unsubscribed", "deleted", "complaint")


class FormLimits(Database):
    """Used form tokens (until they expire) and the sign-up form's emails (keyed mailboxes)."""

    def use_form_token(self, token_id: str, expires: datetime, now: datetime) -> bool:
        """Record a form token as used; return False if it was already (a replay)."""
        with self.transaction():
            self.db.execute("DELETE FROM form_tokens WHERE expires_at < ?", [iso(now)])
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO form_tokens (id, expires_at) VALUES (?, ?)",
                [token_id, iso(expires)],
            )
        return cursor.rowcount > 0

    def add_form_mail(self, mailbox: str, now: datetime) -> None:
        """Record that the sign-up form sent an email to a mailbox (its keyed identifier)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO form_mails (mailbox, at) VALUES (?, ?)", [mailbox, iso(now)]
            )

    def form_mails(self, since: datetime, mailbox: str | None = None) -> int:
        """Return how many emails the sign-up form sent since a moment (to one mailbox)."""
        if mailbox is None:
            query, values = "SELECT count(*) FROM form_mails WHERE at >= ?", [iso(since)]
        else:
            query = "SELECT count(*) FROM form_mails WHERE mailbox = ? AND at >= ?"
            values = [mailbox, iso(since)]
        return self.db.execute(query, values).fetchone()[0]

    def prune_form_mails(self, before: datetime) -> None:
        """Forget the sign-up form's emails sent before a moment."""
        with self.transaction():
            self.db.execute("DELETE FROM form_mails WHERE at < ?", [iso(before)])

    def left_at(self, email: str) -> datetime | None:
        """Return when the mailbox of an address last unsubscribed, deleted its data or
        complained, under any of its spellings (LEFT), or None."""
        wanted = mailbox_key(email)
        domain = wanted.rpartition("@")[2]
        domains = ("gmail.com", "googlemail.com") if domain == "gmail.com" else (domain,)
        latest = None
        for found, created in self.db.execute(
            "SELECT email, created_at FROM suppressions WHERE reason IN "
            f"({','.join('?' * len(LEFT))}) AND substr(email, instr(email, '@') + 1) "
            f"IN ({','.join('?' * len(domains))})",
            [*LEFT, *domains],
        ):
            if mailbox_key(found) == wanted and (latest is None or created > latest):
                latest = created
        return datetime.fromisoformat(latest) if latest else None
