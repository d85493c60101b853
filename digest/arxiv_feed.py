"""Parse arXiv API answers (Atom) into Papers, incrementally, bounding every field."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .models import Paper, collapse, split_id
from .numbers import whole_number

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
# An arXiv identifier: new style (2501.10548) or old style (hep-th/9901001, math.GT/0309136).
ID_RE = re.compile(r"^([0-9]{4}\.[0-9]{4,5}|[a-z]+(-[a-z]+)*(\.[A-Za-z]{2})?/[0-9]{7})$")
CUT = " […]"
# No real paper comes near these; anything longer is cut, so no answer can bloat the history.
LIMITS = {
    "title": 1_000,
    "abstract": 10_000,
    "comment": 2_000,
    "journal_ref": 1_000,
    "doi": 200,
    "author": 300,
    "category": 40,
}
MAX_AUTHORS = 5_000
MAX_CATEGORIES = 50
TEXT_CAP = 4 * max(LIMITS.values())  # text kept of any element while parsing


class FeedError(Exception):
    """The answer is not an arXiv result feed (transient) or is arXiv's error feed (not)."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


def bounded(text: str | None, limit: int) -> str:
    """Collapse white space and cut text longer than limit, marking the cut."""
    text = collapse(text)
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT)].rsplit(" ", 1)[0] + CUT


def _moment(text: str | None) -> datetime | None:
    """Parse an Atom timestamp into an aware UTC datetime, or None if it is not one."""
    try:
        moment = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass
class FeedPage:
    """What one answer held: papers, entries skipped with the reason, the total, an error."""

    papers: list[Paper] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    entries: int = 0
    total: int | None = None
    error: str | None = None

    @property
    def oldest(self) -> datetime | None:
        """Return the oldest updated time on the page."""
        return min((p.updated for p in self.papers), default=None)


class PageParser:
    """Parse an answer chunk by chunk, keeping only finished papers and bounded text."""

    def __init__(self) -> None:
        self.page = FeedPage()
        self._parser = ET.XMLParser(target=_Builder(self.page))

    def feed(self, data: bytes) -> None:
        """Parse more of the answer; raise FeedError if it is not an Atom feed."""
        try:
            self._parser.feed(data)
        except ET.ParseError as exc:
            raise FeedError(f"arXiv answered something that is not XML ({exc})", True) from None

    def close(self) -> FeedPage:
        """Finish parsing and return the page; raise FeedError if the answer was cut short."""
        try:
            self._parser.close()
        except ET.ParseError as exc:
            raise FeedError(f"arXiv's answer is not complete XML ({exc})", True) from None
        if self.page.error is not None:
            raise FeedError(f"arXiv reported an error: {self.page.error}", False)
        return self.page


class _Builder:
    """The XML parser's target: turns elements into papers as expat reads them."""

    def __init__(self, page: FeedPage) -> None:
        self.page = page
        self._path: list[str] = []
        self._text: list[str] = []
        self._size = 0
        self._entry: dict[str, Any] | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        """Open an element."""
        if not self._path and tag != f"{ATOM}feed":
            raise FeedError(f"arXiv answered with a {tag!r} document, not an Atom feed", True)
        self._path.append(tag)
        self._text, self._size = [], 0
        if tag == f"{ATOM}entry":
            self._entry = {"authors": [], "categories": []}
        elif self._entry is not None and tag == f"{ATOM}category":
            self._entry["categories"].append(attrib.get("term"))
        elif self._entry is not None and tag == f"{ARXIV}primary_category":
            self._entry["primary"] = attrib.get("term")

    def data(self, text: str) -> None:
        """Keep an element's text, up to TEXT_CAP characters (the rest is cut anyway)."""
        if self._size < TEXT_CAP:
            self._text.append(text)
            self._size += len(text)

    def end(self, tag: str) -> None:
        """Close an element: a finished entry becomes a paper."""
        text = "".join(self._text)[:TEXT_CAP]
        self._text, self._size = [], 0
        self._path.pop()
        parent = self._path[-1] if self._path else None
        if tag == f"{ATOM}entry" and self._entry is not None:
            self._finish(self._entry)
            self._entry = None
        elif self._entry is None:
            if tag == f"{OPENSEARCH}totalResults":
                self.page.total = whole_number(text.strip(), digits=12)
        elif tag == f"{ATOM}name" and parent == f"{ATOM}author":
            self._entry["authors"].append(text)
        elif parent == f"{ATOM}entry":
            self._entry.setdefault(tag, text)

    def close(self) -> None:
        """Nothing to return: the page is already filled."""

    def _finish(self, fields: dict[str, Any]) -> None:
        raw_id = (fields.get(f"{ATOM}id") or "").strip()
        if "/api/errors" in raw_id:
            self.page.error = collapse(fields.get(f"{ATOM}summary")) or "unknown error"
            return
        self.page.entries += 1
        try:
            self.page.papers.append(to_paper(fields, raw_id))
        except ValueError as exc:
            self.page.skipped.append(str(exc))
            log.warning("skipping an entry of arXiv's answer: %s", exc)


def to_paper(fields: dict[str, Any], raw_id: str) -> Paper:
    """Map one entry's fields to a Paper; raise ValueError for an entry that cannot be one."""
    if not raw_id:
        raise ValueError("an entry has no <id>")
    paper_id, version = split_id(raw_id.rsplit("/abs/", 1)[-1])
    if not ID_RE.match(paper_id):
        raise ValueError(f"an entry's <id> is not an arXiv id: {raw_id[:100]!r}")
    updated_text, published_text = fields.get(f"{ATOM}updated"), fields.get(f"{ATOM}published")
    updated, published = _moment(updated_text), _moment(published_text)
    either = updated or published
    if either is None:
        raise ValueError(
            f"{paper_id}: neither <updated> nor <published> is a date "
            f"({(updated_text or '')[:40]!r}, {(published_text or '')[:40]!r})"
        )
    if updated is None or published is None:
        log.warning("%s: one of its dates is not a date; using the other", paper_id)
    authors = [bounded(a, LIMITS["author"]) for a in fields["authors"]]
    authors = [a for a in authors if a]
    if len(authors) > MAX_AUTHORS:
        authors = [*authors[:MAX_AUTHORS], f"and {len(authors) - MAX_AUTHORS} more"]
    categories = [bounded(c, LIMITS["category"]) for c in fields["categories"][:MAX_CATEGORIES]]
    categories = [c for c in categories if c]
    primary = bounded(fields.get("primary"), LIMITS["category"])

    def text(tag: str, limit: str) -> str | None:
        return bounded(fields.get(tag), LIMITS[limit]) or None

    return Paper(
        id=paper_id,
        version=version,
        title=bounded(fields.get(f"{ATOM}title"), LIMITS["title"]),
        authors=tuple(authors),
        abstract=bounded(fields.get(f"{ATOM}summary"), LIMITS["abstract"]),
        comment=text(f"{ARXIV}comment", "comment"),
        published=published or either,
        updated=updated or either,
        primary_category=primary or (categories[0] if categories else ""),
        categories=tuple(categories),
        doi=text(f"{ARXIV}doi", "doi"),
        journal_ref=text(f"{ARXIV}journal_ref", "journal_ref"),
    )


def error_message(body: bytes) -> str | None:
    """Return the message of an arXiv error feed (as sent with HTTP 400), if the body is one."""
    parser = PageParser()
    try:
        parser.feed(body)
        parser.close()
    except FeedError:
        pass
    return parser.page.error
