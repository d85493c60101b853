"""The version of each person's manage links: signing out, deleting or --revoke raises it."""

from __future__ import annotations

from datetime import datetime

from ..addresses import address_key
from .base import Database, iso


class LinkVersions(Database):
    """Which version of a person's manage links works now (0 until they first revoke)."""

    def link_version(self, email: str) -> int:
        """Return the version a manage link of this address must carry to work."""
        row = self.db.execute(
            "SELECT version FROM link_versions WHERE key = ?", [address_key(email)]
        ).fetchone()
        return int(row[0]) if row else 0

    def revoke_links(self, email: str, now: datetime) -> int:
        """Make every manage link of an address mailed so far fail; return the new version."""
        key = address_key(email)
        with self.transaction():
            self.db.execute(
                "INSERT INTO link_versions (key, version, revoked_at) VALUES (?, 1, ?) "
                "ON CONFLICT (key) DO UPDATE SET version = version + 1, "
                "revoked_at = excluded.revoked_at",
                [key, iso(now)],
            )
            return self.link_version(email)
