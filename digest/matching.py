"""Match topics against a set of papers: each distinct term looked up once, then set logic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from .caches import Recent
from .models import Paper
from .topics import Term, Topic, words

KEPT = 4_096  # queries' matches kept (the most recently used)


class Corpus(Protocol):
    """The papers a match runs over, answering one term at a time."""

    def text(self, phrase: tuple[str, ...]) -> set[str]:
        """Return the ids of the papers whose title or abstract has the phrase (stemmed)."""
        ...  # pragma: no cover

    def author(self, name: tuple[str, ...]) -> set[str]:
        """Return the ids of the papers one of whose authors has these words, in order."""
        ...  # pragma: no cover

    def category(self, category: str) -> set[str]:
        """Return the ids of the papers in a category, or in any of an archive's."""
        ...  # pragma: no cover


class Matcher:
    """Match topics against one corpus: a term is looked up once, a query evaluated once."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.terms: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}
        # Tuples (a third of a set's memory), the most recent kept: each line is new or common.
        self.queries: Recent[str, tuple[str, ...]] = Recent(KEPT)

    def match(self, topic: Topic) -> tuple[str, ...]:
        """Return the ids of the papers a topic matches (in no particular order)."""
        if (found := self.queries.get(topic.key)) is None:
            hits: set[str] = set()
            for clause in topic.clauses:
                wanted = sorted((self._term(t) for t in clause.wanted), key=len)
                papers = set(wanted[0]).intersection(*wanted[1:])
                for term in clause.unwanted:
                    if not papers:
                        break
                    papers -= self._term(term)
                hits |= papers
            found = self.queries.put(topic.key, tuple(hits))
        return found

    def match_all(self, topics: Iterable[Topic]) -> dict[str, tuple[str, ...]]:
        """Return each topic's matches by its key (identical queries are matched once)."""
        return {topic.key: self.match(topic) for topic in topics}

    def _term(self, term: Term) -> frozenset[str]:
        key = (term.field, term.words)
        if (found := self.terms.get(key)) is None:
            if term.field == "text":
                ids = self.corpus.text(term.words)
            elif term.field == "au":
                ids = self.corpus.author(term.words)
            else:
                ids = self.corpus.category(term.words[0])
            found = self.terms[key] = frozenset(ids)
        return found


class PaperFacets:
    """The author and category indexes of a set of papers (the part FTS5 does not do exactly)."""

    def __init__(self, papers: Mapping[str, Paper]):
        self.names: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.cats: dict[str, set[str]] = {}
        self.add_authors((p.id, p.authors) for p in papers.values())
        for paper in papers.values():
            self.add_categories(paper.id, (paper.primary_category, *paper.categories))

    @classmethod
    def of_authors(cls, authors: Iterable[tuple[str, Sequence[str]]]) -> PaperFacets:
        """Return the author index alone of papers given as (id, authors)."""
        facets = cls({})
        facets.add_authors(authors)
        return facets

    def add_authors(self, authors: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Index the authors of papers given as (id, authors)."""
        for paper_id, names in authors:
            for author in names:
                tokens = words(author)
                for token in set(tokens):
                    self.names.setdefault(token, []).append((paper_id, tokens))

    def add_categories(self, paper_id: str, categories: Iterable[str]) -> None:
        """Index a paper's categories, and the archive of each (cs of cs.IR)."""
        for category in categories:
            folded = category.casefold()
            self.cats.setdefault(folded, set()).add(paper_id)
            archive = folded.split(".", 1)[0]
            if archive != folded:
                self.cats.setdefault(archive, set()).add(paper_id)

    def author(self, name: tuple[str, ...]) -> set[str]:
        """Return the papers with an author whose name has these words in this order."""
        if not name:
            return set()
        rarest = min(name, key=lambda token: len(self.names.get(token, ())))
        return {
            paper_id for paper_id, tokens in self.names.get(rarest, ()) if in_order(tokens, name)
        }

    def category(self, category: str) -> set[str]:
        """Return the papers in a category (cs.IR) or an archive (cs)."""
        return set(self.cats.get(category.casefold(), ()))


def in_order(tokens: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Tell whether `part` appears in `tokens` as consecutive words."""
    n = len(part)
    return any(tokens[i : i + n] == part for i in range(len(tokens) - n + 1))
