"""What own topics are matched over: a day's papers in memory, or the last weeks' history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime

from ..matching import PaperFacets
from ..models import Paper
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


class HistoryCorpus:
    """The papers that arrived since a moment, searched in the history's own index."""

    def __init__(self, database: Database, since: datetime):
        self.db = database.db
        self.since = iso(since)
        self.facets: PaperFacets | None = None

    def text(self, phrase_words: tuple[str, ...]) -> set[str]:
        """Return the recent papers whose title or abstract has the phrase."""
        rows = self.db.execute(
            "SELECT papers.id FROM papers_fts JOIN papers ON papers.rowid = papers_fts.rowid "
            "JOIN arrivals ON arrivals.paper_id = papers.id "
            "WHERE papers_fts MATCH ? AND arrivals.arrived_at >= ?",
            [phrase(phrase_words), self.since],
        )
        return {row[0] for row in rows}

    def author(self, name: tuple[str, ...]) -> set[str]:
        """Return the recent papers with an author whose name has these words in order."""
        if self.facets is None:  # authors are stored JSON-escaped: the index cannot fold them
            rows = self.db.execute(
                "SELECT papers.id, papers.authors FROM arrivals JOIN papers "
                "ON papers.id = arrivals.paper_id WHERE arrivals.arrived_at >= ?",
                [self.since],
            )
            self.facets = PaperFacets.of_authors((i, json.loads(a)) for i, a in rows)
        return self.facets.author(name)

    def category(self, category: str) -> set[str]:
        """Return the recent papers in a category or archive."""
        rows = self.db.execute(
            "SELECT papers.id, papers.primary_category, papers.categories FROM arrivals "
            "JOIN papers ON papers.id = arrivals.paper_id WHERE arrivals.arrived_at >= ? "
            "AND (papers.categories LIKE ? OR papers.primary_category LIKE ?)",
            [self.since, f'%"{category}%', f"{category}%"],
        )
        return {
            paper_id
            for paper_id, primary, cats in rows
            if any(_in(c, category) for c in [primary, *json.loads(cats)])
        }


def _in(category: str, wanted: str) -> bool:
    folded = category.casefold()
    return folded == wanted or folded.split(".", 1)[0] == wanted
