"""What ranking reads through SQLite: words' stems as the full-text index makes them, and how
common each stem is in the history."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from .base import Database

_FTS = "fts5(word, tokenize='porter unicode61 remove_diacritics 2')"


class Stemmer:
    """Porter stems of words, made by FTS5's own tokenizer (as the index makes them), kept."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute(f"CREATE VIRTUAL TABLE words USING {_FTS}")
        self.conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(words, instance)")
        self.known: dict[str, str] = {}

    def stems(self, words: Iterable[str]) -> dict[str, str]:
        """Return each word's stem (a word the tokenizer drops stands for itself)."""
        wanted = set(words)
        new = [w for w in wanted if w not in self.known]
        if new:
            with self.conn:
                self.conn.executemany(
                    "INSERT INTO words (rowid, word) VALUES (?, ?)", enumerate(new, start=1)
                )
                for doc, term in self.conn.execute("SELECT doc, term FROM terms WHERE offset = 0"):
                    self.known[new[doc - 1]] = term
                self.conn.execute("DELETE FROM words")
            for word in new:
                self.known.setdefault(word, word)
        return {w: self.known[w] for w in wanted}


class Vocabulary(Database):
    """How common each term is in the history's full-text index."""

    def document_frequencies(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        """Return in how many papers each term occurs (those that do), and how many papers."""
        self.db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.history_terms "
            "USING fts5vocab(main, papers_fts, row)"
        )
        found = {}
        for term in set(terms):
            row = self.db.execute(
                "SELECT doc FROM temp.history_terms WHERE term = ?", [term]
            ).fetchone()
            if row is not None:
                found[term] = row[0]
        total = self.db.execute("SELECT count(*) FROM papers").fetchone()[0]
        return found, total
