"""What own topics are matched over: a day's papers in memory, or the last weeks' history."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ..matching import PaperFacets
from ..models import Paper
from ..topics import fold
from .base import Database, iso

# The reading room's tokenizer (porter stemming over unicode61), accents folded as topics are.
_FTS = "fts5(title, abstract, tokenize='porter unicode61 remove_diacritics 2')"


def phrase(words: tuple[str, ...]) -> str:
    """Return an FTS5 query for a phrase in the title or abstract."""
    return '{title abstract} : "' + " ".join(words).replace('"', '""') + '"'


class DayCorpus:
    """A set of papers (a cycle's news) indexed in memory for matching many topics."""

    def __init__(self, papers: Mapping[str, Paper]):
        self.facets = PaperFacets(papers)
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute(f"CREATE VIRTUAL TABLE day USING {_FTS}")
        self.ids = list(papers)  # by rowid - 1: each id one string, however many matches
        self.conn.executemany(
            "INSERT INTO day (rowid, title, abstract) VALUES (?, ?, ?)",
            ((n, p.title, p.abstract) for n, p in enumerate(papers.values(), start=1)),
        )

    def close(self) -> None:
        """Free the index."""
        self.conn.close()

    def text(self, phrase_words: tuple[str, ...]) -> set[str]:
        """Return the papers whose title or abstract has the phrase."""
        rows = self.conn.execute("SELECT rowid FROM day WHERE day MATCH ?", [phrase(phrase_words)])
        return {self.ids[row[0] - 1] for row in rows}

    def author(self, name: tuple[str, ...]) -> set[str]:
        """Return the papers with an author whose name has these words in order."""
        return self.facets.author(name)

    def category(self, category: str) -> set[str]:
        """Return the papers in a category or archive."""
        return self.facets.category(category)


_APART = "\x1f"  # between the names of a paper's authors, as read from SQLite (char(31))


@dataclass
class RecentPapers:
    """What a HistoryCorpus has read of the papers that arrived since its moment, each part
    when first asked: reusable by the next one of the same moment while no paper arrives."""

    since: str
    first: int = 0  # the smallest of their row ids
    rows: dict[int, str] | None = None  # row id -> paper id
    authors: list[tuple[str, str]] | None = None  # paper id, its authors folded (_APART)
    cats: dict[str, str] | None = None  # category -> its papers' ids (_APART)


class HistoryCorpus:
    """The papers that arrived since a moment, searched in the history's own index.

    The recent papers' row ids are read once (a word is looked up in the index alone, then
    kept if recent), their authors once and their categories once, when first asked (SQLite
    reads the JSON); `known` hands over what an earlier corpus of the same moment read.
    """

    def __init__(self, database: Database, since: datetime, known: RecentPapers | None = None):
        self.db = database.db
        self.since = iso(since)
        self.known = (
            known if known is not None and known.since == self.since else RecentPapers(self.since)
        )

    @property
    def recent(self) -> dict[int, str]:
        """Return the row id of each recent paper, with its id."""
        if (rows := self.known.rows) is None:
            rows = dict(
                self.db.execute(
                    "SELECT papers.rowid, papers.id FROM arrivals JOIN papers "
                    "ON papers.id = arrivals.paper_id WHERE arrivals.arrived_at >= ?",
                    [self.since],
                ).fetchall()
            )
            self.known.first, self.known.rows = min(rows, default=0), rows
        return rows

    def prepare(self, fields: Iterable[str]) -> None:
        """Read now what matching on these fields ("text", "au", "cat") needs of the papers."""
        wanted = set(fields)
        if wanted:
            self.recent  # noqa: B018  (read and kept)
        if "au" in wanted:
            self._authors()
        if "cat" in wanted:
            self._categories()

    def text(self, phrase_words: tuple[str, ...]) -> set[str]:
        """Return the recent papers whose title or abstract has the phrase."""
        recent = self.recent
        if not recent:
            return set()
        rows = self.db.execute(
            "SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? AND rowid >= ?",
            [phrase(phrase_words), self.known.first],
        )
        return {recent[row[0]] for row in rows if row[0] in recent}

    def author(self, name: tuple[str, ...]) -> set[str]:
        """Return the recent papers with an author whose name has these words in order."""
        if not name:
            return set()
        longest = max(name, key=len)  # in the folded names of every paper it may match
        found = ((i, names.split(_APART)) for i, names in self._authors() if longest in names)
        return PaperFacets.of_authors(found).author(name)

    def category(self, category: str) -> set[str]:
        """Return the recent papers in a category or archive."""
        wanted = category.casefold()
        found: set[str] = set()
        for name, ids in self._categories().items():
            if name == wanted or name.split(".", 1)[0] == wanted:
                found.update(ids.split(_APART))
        return found

    def _authors(self) -> list[tuple[str, str]]:
        """Return each recent paper's authors, folded (stored JSON-escaped: the index cannot)."""
        if (authors := self.known.authors) is None:
            recent = self.recent  # their ids, kept once
            rows = self.db.execute(
                "SELECT papers.rowid, (SELECT group_concat(value, char(31)) "
                "FROM json_each(papers.authors)) FROM arrivals JOIN papers "
                "ON papers.id = arrivals.paper_id WHERE arrivals.arrived_at >= ?",
                [self.since],
            )
            authors = [(recent[r], fold(names)) for r, names in rows if names and r in recent]
            self.known.authors = authors
        return authors

    def _categories(self) -> dict[str, str]:
        """Return the recent papers of each category (primary or cross-listed), lower case."""
        if (cats := self.known.cats) is None:
            rows = self.db.execute(
                "SELECT lower(value), group_concat(recent.paper, char(31)) FROM (SELECT "
                "papers.id AS paper, json_insert(papers.categories, '$[#]', "
                "papers.primary_category) AS cats FROM arrivals JOIN papers "
                "ON papers.id = arrivals.paper_id WHERE arrivals.arrived_at >= ?) AS recent, "
                "json_each(recent.cats) GROUP BY lower(value)",
                [self.since],
            )
            cats = self.known.cats = dict(rows.fetchall())
        return cats
