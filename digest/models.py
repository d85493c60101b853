"""Plain data shared by the modules: papers and what a cycle found."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

_ID_RE = re.compile(r"^(?P<id>.+?)v(?P<version>\d+)$")
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

    @property
    def failed(self) -> bool:
        """Tell whether the keyword's fetch failed this cycle."""
        return self.error is not None

    def describe(self) -> str:
        """Return the keyword's part of the cycle's summary line."""
        if self.error is not None:
            return f"{self.keyword}: FAILED ({self.error})"
        text = f"{self.keyword}: {self.fetched} fetched, {len(self.new)} new"
        if self.skipped:
            text += f", {self.skipped} unreadable entries skipped"
        if self.limit is not None:
            text += f", LIMIT REACHED (more than {self.limit} papers; narrow the keyword)"
        return text

    @property
    def warning(self) -> str | None:
        """Return what the operator should know even though the keyword was fetched."""
        if self.limit is None:
            return None
        return (
            f"arXiv had more than {self.limit} new papers for {self.keyword}; only the newest "
            f"{self.limit} were fetched: narrow the keyword (or raise [arxiv] max_papers)"
        )
