"""A news window's words, for ordering its papers by a topic's words (BM25).

Each paper's words are counted once (title, abstract and authors apart); a stem's counts over
the window are made when a query first needs it, and all stems' at once when many queries do
(the send phase's own topics). A paper's full counts by stem are made only for what needs
them all (a reader's votes: `ranking.tfidf`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from sys import intern

_TOKEN = re.compile(r"[^\W_]+")
_GAPS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
TITLE, AUTHORS = 3, 2  # a title's word counts as three of the abstract's, an author's as two
K1, B = 1.2, 0.75  # BM25's usual constants
FEW_STEMS = 64  # stems counted one by one; past this, every stem of the window at once

# How often each word occurs in a paper's title, in its abstract and in its authors' names.
PaperWords = tuple[Counter[str], Counter[str], Counter[str]]


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper's words for ranking: weighted counts by stem, and its length."""

    counts: dict[str, float]
    length: float


def tokens(text: str) -> list[str]:
    """Return a text's words, case-folded (accents kept: they are folded when stemming)."""
    folded = text.casefold()
    if folded.isascii():  # the same words, found faster: runs of letters and digits
        return folded.translate(_GAPS).split()
    return _TOKEN.findall(folded)


def paper_words(title: str, abstract: str, authors: Iterable[str]) -> PaperWords:
    """Return how often each word occurs in a paper's title, abstract and authors' names
    (each word one string however many papers have it: a window's words are held at once)."""
    return (
        Counter(map(intern, tokens(title))),
        Counter(map(intern, tokens(abstract))),
        Counter(map(intern, tokens(" ".join(authors)))),
    )


def paper_text(words: PaperWords, stems: Mapping[str, str]) -> PaperText:
    """Return a paper's PaperText from its words (`stems`: each word's stem)."""
    counts: dict[str, float] = {}
    for weight, found in zip((TITLE, 1, AUTHORS), words, strict=True):
        for word, n in found.items():
            stem = stems.get(word, word)
            counts[stem] = counts.get(stem, 0.0) + weight * n
    return PaperText(counts, sum(counts.values()))


def _length(words: PaperWords) -> float:
    title, abstract, authors = words
    return float(TITLE * title.total() + abstract.total() + AUTHORS * authors.total())


class TextIndex:
    """A news window's papers' words: what BM25 needs, each stem counted when first asked."""

    def __init__(self, words: Mapping[str, PaperWords], stems: Mapping[str, str]):
        self.words, self.stems = words, stems
        self.total = len(words) or 1
        self.lengths = {paper_id: _length(found) for paper_id, found in words.items()}
        self.average = sum(self.lengths.values()) / self.total or 1.0
        self.forms: dict[str, set[str]] = {}  # stem -> the words the window has of it
        self.spellings: dict[str, set[str]] = {}  # the same, of titles and abstracts only
        shown: set[str] = set()
        every: set[str] = set()
        for title, abstract, authors in words.values():
            shown.update(title, abstract)
            every.update(authors)
        for word in every | shown:
            self.forms.setdefault(stems.get(word, word), set()).add(word)
        for word in shown:
            self.spellings.setdefault(stems.get(word, word), set()).add(word)
        self.postings: dict[str, dict[str, float]] = {}  # stem -> paper -> weighted count
        self.whole = False  # whether every stem's postings are made

    def bm25(
        self, query: Iterable[str], ids: Iterable[str]
    ) -> dict[str, tuple[float, frozenset[str]]]:
        """Return each paper's BM25 score for the query's stems, with the words of its title
        and abstract that matched."""
        idf = {}
        for stem in set(query):
            if n := len(postings := self._postings(stem)):
                idf[stem] = (math.log(1 + (self.total - n + 0.5) / (n + 0.5)), postings)
        found = {}
        for paper_id in ids:
            score, words = 0.0, set[str]()
            norm = K1 * (1 - B + B * self.lengths[paper_id] / self.average)
            for stem, (weight, postings) in idf.items():
                if (count := postings.get(paper_id)) is not None:
                    score += weight * count * (K1 + 1) / (count + norm)
                    words |= self.spellings.get(stem, set())  # those it has are bold
            found[paper_id] = (score, frozenset(words))
        return found

    def _postings(self, stem: str) -> dict[str, float]:
        """Return the weighted count of a stem in each paper that has it."""
        if (found := self.postings.get(stem)) is not None:
            return found
        if self.whole:
            return {}
        if len(self.postings) >= FEW_STEMS:  # many queries: every stem in one pass
            self._count_all()
            return self.postings.get(stem, {})
        forms = self.forms.get(stem, ())
        found = {}
        for paper_id, parts in self.words.items():
            count = 0.0
            for weight, part in zip((TITLE, 1, AUTHORS), parts, strict=True):
                for word in forms:
                    count += weight * part.get(word, 0)
            if count:
                found[paper_id] = count
        self.postings[stem] = found
        return found

    def _count_all(self) -> None:
        postings: dict[str, dict[str, float]] = {}
        for paper_id, parts in self.words.items():
            for stem, count in paper_text(parts, self.stems).counts.items():
                postings.setdefault(stem, {})[paper_id] = count
        self.postings, self.whole = postings, True
