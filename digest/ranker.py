"""Order each reader's digest: every section by its topic's words and what the reader's votes
taught, a block of top picks, the words that matched and the reason a paper was lifted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from .models import Paper
from .ranking import (
    Candidate,
    PaperText,
    Profile,
    TextIndex,
    Vector,
    learn,
    order,
    paper_text,
    tfidf,
    tokens,
)
from .store import Store, Vote
from .store.relevance import Stemmer

TOP_PICKS = "Top picks"
PICKS_FROM = 10  # a mail with more papers than this starts with the reader's top picks

Sections = list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]]


class Arranged(NamedTuple):
    """A digest's sections in the reader's order, with what ranking adds to its papers."""

    sections: Sections
    reasons: dict[str, str]  # paper id -> the title of the liked paper that lifted it
    highlights: dict[str, frozenset[str]]  # paper id -> its section's words it has
    picks: int  # 1 if the first section is the top picks, else 0


class Ranker:
    """A cycle's ranking: each paper's words read once, each window's statistics counted
    once, each section's plain order computed once, each reader's profile learned once."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        top_picks: int = 5,
        votes: Mapping[str, Sequence[Vote]] | None = None,
    ):
        self.store, self.now, self.top_picks = store, now, top_picks
        # By address key: who has a profile (`votes`: these instead of everyone's stored ones).
        self.votes: Mapping[str, Sequence[Vote]] = store.all_votes() if votes is None else votes
        self.stemmer = Stemmer()
        self.texts: dict[str, PaperText] = {}
        self.indexes: dict[object, TextIndex] = {}
        self.scores: dict[tuple[object, tuple[str, ...]], dict] = {}
        self.vectors: dict[str, Vector] = {}
        self.frequencies: dict[str, int] = {}
        self.total = 0
        self.profiles: dict[str, Profile | None] = {}

    def personal(self, key: str) -> bool:
        """Tell whether a reader's votes give them an order of their own."""
        return key in self.votes

    def arrange(
        self,
        sections: Sections,
        queries: Mapping[str, Sequence[str]],
        papers: Mapping[str, Paper],
        window: object,
        reader: str | None = None,
    ) -> Arranged:
        """Order each section (`queries`: its topic's words, by section title) over a news
        window's papers, for a reader (None: by the text alone); add the top picks."""
        index = self._index(window, papers)
        profile = self.profile(reader) if reader is not None else None
        if profile is not None:
            self._vectors({p.id: p for _, items in sections for p, _ in items})
        arranged: Sections = []
        reasons: dict[str, str] = {}
        highlights: dict[str, frozenset[str]] = {}
        best: list[tuple[float, datetime, str, str]] = []
        for title, items in sections:
            scores = self._scores(window, index, tuple(queries.get(title, ())), items)
            candidates = [Candidate(p.id, p.updated, scores[p.id][0]) for p, _ in items]
            ranked = order(candidates, profile, self.vectors if profile else None)
            by_id = {p.id: (p, tags) for p, tags in items}
            arranged.append((title, [by_id[r.paper_id] for r in ranked]))
            for r in ranked:
                if r.because:
                    reasons[r.paper_id] = r.because
                if words := scores[r.paper_id][1]:
                    highlights[r.paper_id] = words
                best.append((r.score, by_id[r.paper_id][0].updated, r.paper_id, title))
        picks = 0
        if self.top_picks and len(best) > PICKS_FROM:
            best.sort(key=lambda b: (-round(b[0], 9), -b[1].timestamp(), b[2]))
            tags = {p.id: (title, *t) for title, items in arranged for p, t in items}
            top = [(papers[pid], tags[pid]) for _, _, pid, _ in best[: self.top_picks]]
            arranged.insert(0, (TOP_PICKS, top))
            picks = 1
        return Arranged(arranged, reasons, highlights, picks)

    def profile(self, key: str) -> Profile | None:
        """Return what a reader's votes taught (None: no votes on papers still known)."""
        if key not in self.profiles:
            votes = self.votes.get(key, [])
            papers = self.store.papers([v.paper_id for v in votes])
            self._vectors(papers)
            titles = {p.id: p.title for p in papers.values()}
            self.profiles[key] = learn(votes, self.vectors, titles, self.now)
        return self.profiles[key]

    def _index(self, window: object, papers: Mapping[str, Paper]) -> TextIndex:
        if window not in self.indexes:
            self._texts(papers)
            self.indexes[window] = TextIndex({i: self.texts[i] for i in papers})
        return self.indexes[window]

    def _scores(
        self, window: object, index: TextIndex, query: tuple[str, ...], items: Sequence
    ) -> dict[str, tuple[float, frozenset[str]]]:
        """Return the section's papers' text scores, each paper scored once per query."""
        known = self.scores.setdefault((window, query), {})
        missing = [p.id for p, _ in items if p.id not in known]
        if missing:
            stems = self.stemmer.stems(query)
            known.update(index.bm25([stems[w] for w in query], missing))
        return known

    def _texts(self, papers: Mapping[str, Paper]) -> None:
        new = [p for i, p in papers.items() if i not in self.texts]
        if not new:
            return
        words = {w for p in new for w in tokens(f"{p.title} {p.abstract} {' '.join(p.authors)}")}
        stems = self.stemmer.stems(words)
        for p in new:
            self.texts[p.id] = paper_text(p.title, p.abstract, p.authors, stems)

    def _vectors(self, papers: Mapping[str, Paper]) -> None:
        """Make the tf-idf vectors of papers (voted ones, and those of readers' sections)."""
        self._texts(papers)
        new = [i for i in papers if i not in self.vectors]
        stems = {s for i in new for s in self.texts[i].counts} - self.frequencies.keys()
        if stems:
            found, self.total = self.store.document_frequencies(stems)
            self.frequencies.update({s: found.get(s, 0) for s in stems})
        for i in new:
            self.vectors[i] = tfidf(self.texts[i].counts, self.frequencies, self.total)
