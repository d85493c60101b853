"""Plain data shared by the modules: papers, and what a cycle found and did."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

_ID_RE = re.compile(r"^(?P<id>.+?)v(?P<version>[0-9]+)$")
_SPACE_RE = re.compile(r"\s+")


def collapse(text: str | None) -> str:
    """Collapse runs of white space (newlines included) to single spaces."""
    return _SPACE_RE.sub(" ", text or "").strip()


def split_id(short_id: str) -> tuple[str, int]:
    """Split an arXiv id such as '2501.10548v3' into ('2501.10548', 3)."""
    match = _ID_RE.match(short_id.strip())
    if not match:
        return short_id.strip(), 1
    return match["id"], int(match["version"])


@dataclass(frozen=True, slots=True)
class Paper:
    """One arXiv paper at its newest known version."""

    id: str
    version: int
    title: str
    authors: tuple[str, ...]
    abstract: str
    comment: str | None
    published: datetime
    updated: datetime
    primary_category: str
    categories: tuple[str, ...] = ()
    doi: str | None = None
    journal_ref: str | None = None

    @property
    def abs_url(self) -> str:
        """Return the link to the paper's abstract page at its newest version."""
        return f"https://arxiv.org/abs/{self.id}v{self.version}"

    @property
    def pdf_url(self) -> str:
        """Return the link to the paper's PDF at its newest version."""
        return f"https://arxiv.org/pdf/{self.id}v{self.version}"

    @property
    def html_url(self) -> str:
        """Return the link to the paper's HTML version (arXiv's LaTeX-to-HTML rendering)."""
        return f"https://arxiv.org/html/{self.id}v{self.version}"


@dataclass(frozen=True, slots=True)
class Letter:
    """One recipient's message: as written, and in ASCII (IDNA domain) when that can be."""

    recipient: str
    message: bytes  # with the address as written: needs SMTPUTF8 if it is not ASCII
    ascii_recipient: str | None = None
    ascii_message: bytes | None = None


@dataclass(slots=True)
class KeywordResult:
    """What one keyword's fetch and diff produced in a cycle."""

    keyword: str
    fetched: int = 0
    new: list[str] = field(default_factory=list)
    error: str | None = None
    limit: int | None = None  # set when the per-keyword bound cut the fetch short
    skipped: int = 0  # entries of arXiv's answers that could not be read
    late: int = 0  # unseen papers older than the fetch window: recorded, not announced
    bound_key: str = "max_papers"  # the [arxiv] key of that bound (a harvest entry has its own)
    requests: int = 0  # requests sent to arXiv for it this cycle, retries included
    retries: int = 0  # requests sent again after a transient failure
    local: bool = False  # matched in the cycle's new papers, not fetched ([[keywords]] local)

    @property
    def failed(self) -> bool:
        """Tell whether the keyword's fetch failed this cycle."""
        return self.error is not None

    def describe(self) -> str:
        """Return the keyword's part of the cycle's summary line."""
        if self.error is not None:
            return f"{self.keyword}: FAILED ({self.error})"
        found = "matched locally" if self.local else "fetched"
        text = f"{self.keyword}: {self.fetched} {found}, {len(self.new)} new"
        if self.skipped:
            text += f", {self.skipped} unreadable entries skipped"
        if self.limit is not None:
            text += f", LIMIT REACHED (more than {self.limit} papers; {self._fix(False)})"
        return text

    @property
    def warning(self) -> str | None:
        """Return what the operator should know even though the keyword was fetched."""
        if self.limit is None:
            return None
        return (
            f"arXiv had more than {self.limit} new papers for {self.keyword}; only the newest "
            f"{self.limit} were fetched: {self._fix(True)}"
        )

    def _fix(self, long: bool) -> str:
        """Return what to do about the bound: narrow a keyword, raise a harvest entry's bound."""
        if self.bound_key != "max_papers":
            return f"raise [arxiv] {self.bound_key}"
        return "narrow the keyword (or raise [arxiv] max_papers)" if long else "narrow the keyword"


@dataclass(slots=True)
class DeliveryReport:
    """What the send phase did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    pending: int = 0
    bounced: int = 0
    aborted: str | None = None


@dataclass(slots=True)
class ChannelResult:
    """What the channel phase did for one channel: posts taken, posts still waiting, why."""

    name: str
    posted: int = 0
    waiting: int = 0
    error: str | None = None  # the last try's, secrets hidden

    @property
    def behind(self) -> bool:
        """Tell whether posts of this channel wait for a later try."""
        return self.waiting > 0


@dataclass
class CycleReport:
    """What a cycle did, for the summary line and the exit code."""

    keywords: list[KeywordResult] = field(default_factory=list)
    planned: int = 0
    editions: int = 0
    bad_rows: list[str] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    archive_changed: bool = False
    archive_error: str | None = None
    interrupted: bool = False
    channels: list[ChannelResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether every keyword was fetched and every message delivered."""
        failed = self.delivery.failed + self.delivery.pending
        behind = any(c.behind for c in self.channels)
        return (
            not any(k.failed for k in self.keywords)
            and not failed
            and not self.archive_error
            and not behind
        )

    def record(self) -> dict[str, object]:
        """Return what the database keeps of the cycle (for /healthz and the logs)."""
        d = self.delivery
        return {
            "summary": self.summary(),
            "failed_keywords": [k.keyword for k in self.keywords if k.failed],
            "errors": {k.keyword: k.error for k in self.keywords if k.failed},
            "warnings": [k.warning for k in self.keywords if k.warning],
            "archive_error": self.archive_error,
            "sent": d.sent,
            "failed": d.failed,
            "pending": d.pending,
            "channels_behind": [c.name for c in self.channels if c.behind],
            "channel_errors": {c.name: c.error for c in self.channels if c.behind},
        }

    def summary(self) -> str:
        """Return the one-line summary of the cycle."""
        words = "; ".join(k.describe() for k in self.keywords)
        d = self.delivery
        archive = "; the archive was NOT written" if self.archive_error else ""
        return (
            f"summary: {words}. {d.sent} emails sent, {d.failed} failed, {d.pending} still "
            f"queued, {d.skipped} skipped; {len(self.bad_rows)} bad subscriber rows{archive}"
            + self._channels()
        )

    def _channels(self) -> str:
        """Return the channels' part of the summary: posts made, and each channel behind."""
        if not self.channels:
            return ""
        posted = sum(c.posted for c in self.channels)
        behind = [
            f"channel {c.name} BEHIND ({c.waiting} post(s) waiting: {c.error})"
            for c in self.channels
            if c.behind
        ]
        return f"; {posted} channel post(s)" + "".join(f"; {b}" for b in behind)
