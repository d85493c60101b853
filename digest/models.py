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


@dataclass(slots=True)
class KeywordResult:
    """What one keyword's fetch and diff produced in a cycle."""

    keyword: str
    fetched: int = 0
    new: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Tell whether the keyword's fetch failed this cycle."""
        return self.error is not None
