"""Order each reader's digest: every section by its topic's words and what the reader's votes
taught, a block of top picks, the words that matched and the reason a paper was lifted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from .bm25 import PaperWords, TextIndex, paper_text, paper_words
from .caches import Recent
from .matching import KEPT
from .models import Paper
from .ranking import LIFT, PREFERENCE, Candidate, Profile, Vector, learn, order, tfidf
from .store import Store, Vote
from .store.relevance import Stemmer

TOP_PICKS = "Top picks"
PICKS_FROM = 10  # a mail with more papers than this starts with the reader's top picks

Sections = list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]]


class Plain(NamedTuple):
    """A digest's sections in the plain order (the text score's), shared by its readers."""

    sections: Sections
    scores: dict[str, float]  # paper id -> its text score, scaled to its section's best
    words: dict[str, frozenset[str]]  # paper id -> its section's words it has
    home: dict[str, int]  # paper id -> the index of its section
    window: object


class Arranged(NamedTuple):
    """A digest's sections in the reader's order, each cut to its best, with what ranking adds."""

    sections: Sections
    reasons: dict[str, str]  # paper id -> the title of the liked paper that lifted it
    highlights: dict[str, frozenset[str]]  # paper id -> its section's words it has
    picks: int  # 1 if the first section is the top picks, else 0
    totals: dict[str, int]  # section title -> how many papers it has (before the cut)


class Ranker:
    """A cycle's ranking: each paper's words read once, each window's statistics counted
    once, each digest's plain order computed once, each reader's profile learned once and
    applied to the few papers it moves."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        top_picks: int = 5,
        limit: int = 25,
        votes: Mapping[str, Sequence[Vote]] | None = None,
    ):
        self.store, self.now, self.top_picks, self.limit = store, now, top_picks, limit
        # By address key: who has a profile (`votes`: these instead of everyone's stored ones).
        self.votes: Mapping[str, Sequence[Vote]] = store.all_votes() if votes is None else votes
        self.stemmer = Stemmer()
        self.words: dict[str, PaperWords] = {}  # each paper's words, counted once
        self.indexes: dict[object, TextIndex] = {}
        self.sources: dict[object, Mapping[str, Paper]] = {}  # the papers each was built from
        self.scores: Recent[tuple[object, tuple[str, ...]], dict] = Recent(KEPT)  # by query
        self.vectors: dict[str, Vector] = {}
        self.postings: dict[object, dict[str, list[tuple[str, float]]]] = {}
        self.frequencies: dict[str, int] = {}
        self.total = 0
        self.profiles: dict[str, Profile | None] = {}
        self.titles: dict[str, str] = {}  # of the voted papers

    def personal(self, key: str) -> bool:
        """Tell whether a reader's votes give them an order of their own."""
        return key in self.votes

    def plain(
        self,
        sections: Sections,
        queries: Mapping[str, Sequence[str]],
        papers: Mapping[str, Paper],
        window: object,
    ) -> Plain:
        """Order each section by its topic's words (`queries`, by section title) over a news
        window's papers, ties newest first."""
        index = self._index(window, papers)
        ordered: Sections = []
        scores: dict[str, float] = {}
        words: dict[str, frozenset[str]] = {}
        home: dict[str, int] = {}
        for number, (title, items) in enumerate(sections):
            found = self._scores(window, index, tuple(queries.get(title, ())), items)
            candidates = [Candidate(p.id, p.updated, found[p.id][0]) for p, _ in items]
            ranked = order(candidates)
            by_id = {p.id: (p, tags) for p, tags in items}
            ordered.append((title, [by_id[r.paper_id] for r in ranked]))
            for r in ranked:
                scores[r.paper_id], home[r.paper_id] = r.score, number
                if found[r.paper_id][1]:
                    words[r.paper_id] = found[r.paper_id][1]
        return Plain(ordered, scores, words, home, window)

    def arrange(self, plain: Plain, reader: str | None = None) -> Arranged:
        """Return a digest for a reader (None: the plain order): each section's best `limit`
        papers, their votes' lifts applied, and the top picks first in a long email."""
        profile = self.profile(reader) if reader is not None else None
        moved: dict[int, list[tuple[str, float]]] = {}
        if profile is not None:
            for paper_id, lift in self._preferences(profile, plain.window).items():
                if (number := plain.home.get(paper_id)) is not None:
                    moved.setdefault(number, []).append((paper_id, lift))
        cut: Sections = []
        reasons: dict[str, str] = {}
        best: list[tuple[float, float, str]] = []
        for number, (title, items) in enumerate(plain.sections):
            lifts = dict(moved.get(number, ()))
            chosen: list[tuple[float, float, str, tuple[Paper, tuple[str, ...]]]] = []
            for p, tags in items:
                if len(chosen) >= self.limit:
                    break
                if p.id not in lifts:
                    chosen.append((plain.scores[p.id], p.updated.timestamp(), p.id, (p, tags)))
            by_id = {p.id: (p, tags) for p, tags in items} if lifts else {}
            for paper_id, lift in lifts.items():
                p, tags = by_id[paper_id]
                score = plain.scores[paper_id] + PREFERENCE * lift
                chosen.append((score, p.updated.timestamp(), paper_id, (p, tags)))
            chosen.sort(key=lambda c: (-round(c[0], 9), -c[1], c[2]))
            shown = chosen[: self.limit]
            cut.append((title, [c[3] for c in shown]))
            best += [(c[0], c[1], c[2]) for c in shown]
            for _, _, paper_id, _ in shown:  # a reason where the votes lifted it
                if profile is None or lifts.get(paper_id, 0.0) <= LIFT:
                    continue
                if because := profile.because(self.vectors[paper_id]):
                    reasons[paper_id] = because
        totals = {title: len(items) for title, items in plain.sections}
        shown_ids = {p.id for _, items in cut for p, _ in items}
        highlights = {pid: plain.words[pid] for pid in shown_ids if pid in plain.words}
        picks = 0
        if self.top_picks and sum(totals.values()) > PICKS_FROM:
            best.sort(key=lambda b: (-round(b[0], 9), -b[1], b[2]))
            home = {p.id: (p, (title, *t)) for title, items in cut for p, t in items}
            top = [home[pid] for _, _, pid in best[: self.top_picks]]
            cut.insert(0, (TOP_PICKS, top))
            picks = 1
        return Arranged(cut, reasons, highlights, picks, totals)

    def profile(self, key: str) -> Profile | None:
        """Return what a reader's votes taught (None: no votes on papers still known)."""
        if key not in self.profiles:
            if not self.titles:  # every voted paper, read once a cycle
                voted = self.store.papers({v.paper_id for vs in self.votes.values() for v in vs})
                self._vectors(voted)
                self.titles = {p.id: p.title for p in voted.values()}
            votes = self.votes.get(key, [])
            self.profiles[key] = learn(votes, self.vectors, self.titles, self.now)
        return self.profiles[key]

    def _preferences(self, profile: Profile, window: object) -> dict[str, float]:
        """Return the window's papers a profile moves, by how much (its cosine with them)."""
        postings = self.postings.get(window)
        if postings is None:
            index = self.indexes[window]
            self._vectors({i: None for i in index.words})
            postings = self.postings[window] = {}
            for paper_id in index.words:
                for term, weight in self.vectors[paper_id].items():
                    postings.setdefault(term, []).append((paper_id, weight))
        found: dict[str, float] = {}
        for term, weight in profile.weights.items():
            for paper_id, other in postings.get(term, ()):
                found[paper_id] = found.get(paper_id, 0.0) + weight * other
        return found

    def _index(self, window: object, papers: Mapping[str, Paper]) -> TextIndex:
        index = self.indexes.get(window)
        if index is not None and self.sources.get(window) is papers:
            return index  # the same papers as last time
        self.sources[window] = papers
        if index is None or any(i not in index.words for i in papers):  # more papers: anew
            self._words(papers)
            known = dict(index.words) if index is not None else {}
            words = known | {i: self.words[i] for i in papers}
            index = self.indexes[window] = TextIndex(words, self.stemmer.known)
            self.postings.pop(window, None)
            for key in [k for k in self.scores.entries if k[0] == window]:
                del self.scores.entries[key]
        return index

    def _scores(
        self, window: object, index: TextIndex, query: tuple[str, ...], items: Sequence
    ) -> dict[str, tuple[float, frozenset[str]]]:
        """Return the section's papers' text scores, each paper scored once per query."""
        if (known := self.scores.get((window, query))) is None:
            known = self.scores.put((window, query), {})
        missing = [p.id for p, _ in items if p.id not in known]
        if missing:
            stems = self.stemmer.stems(query)
            known.update(index.bm25([stems[w] for w in query], missing))
        return known

    def _words(self, papers: Mapping[str, Paper]) -> None:
        """Count the words of papers not counted yet, and learn their stems."""
        new = [p for i, p in papers.items() if i not in self.words]
        if not new:
            return
        vocabulary: set[str] = set()
        for p in new:
            self.words[p.id] = found = paper_words(p.title, p.abstract, p.authors)
            vocabulary.update(*found)
        self.stemmer.stems(vocabulary)

    def _vectors(self, papers: Mapping[str, Paper | None]) -> None:
        """Make the tf-idf vectors of papers (voted ones, and a window's), their words read."""
        self._words({i: p for i, p in papers.items() if p is not None})
        new = [i for i in papers if i not in self.vectors and i in self.words]
        texts = {i: paper_text(self.words[i], self.stemmer.known) for i in new}
        stems = {s for text in texts.values() for s in text.counts} - self.frequencies.keys()
        if stems:
            found, self.total = self.store.document_frequencies(stems)
            self.frequencies.update({s: found.get(s, 0) for s in stems})
        for i, text in texts.items():
            self.vectors[i] = tfidf(text.counts, self.frequencies, self.total)
