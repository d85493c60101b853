"""Readers' own topics in a cycle: each line parsed once, each query matched once per window.

A cycle's new papers are those that arrived in it (first news of any keyword or harvest entry);
a reader's own topics are matched against the papers that arrived in their news window: this
cycle's for a daily reader, every cycle's since their last digest for a weekly or resumed one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from .caches import Recent
from .matching import KEPT, Matcher
from .models import Paper
from .store import Store
from .store.corpus import DayCorpus
from .topics import Topic, TopicError, parse

log = logging.getLogger(__name__)

MAX_WINDOW_PAPERS = 30_000  # a window's arrivals matched at most (the newest): memory stays bounded
MAX_PAGE_PAPERS = 200  # papers a topic shows on a reader's page of their own topics

# What own-topic sections are: (topic line, ids of the papers it matched, newest first).
Matches = tuple[tuple[str, tuple[str, ...]], ...]
Sections = list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]]


class MatchWindow:
    """The papers one news window holds, indexed once; each query matched once over them."""

    def __init__(self, papers: Mapping[str, Paper]):
        self.papers = papers
        self.corpus = DayCorpus(papers) if papers else None
        self.matcher = Matcher(self.corpus) if self.corpus else None
        self.found: Recent[str, tuple[str, ...]] = Recent(KEPT)  # by query: ids, newest first
        self.lines: Recent[str, tuple[str, ...]] = Recent(KEPT)  # the same, by the line
        self.places: dict[str, int] | None = None

    def match(self, topic: Topic) -> tuple[str, ...]:
        """Return the papers a topic matches, newest update first."""
        if (found := self.found.get(topic.key)) is None:
            ids = self.matcher.match(topic) if self.matcher else ()
            if self.places is None:  # each paper's place, newest update first: sorted once
                papers = self.papers
                newest = sorted(papers, key=lambda i: (papers[i].updated, i), reverse=True)
                self.places = {paper_id: place for place, paper_id in enumerate(newest)}
            found = tuple(sorted(ids, key=self.places.__getitem__))
            self.found.put(topic.key, found)
        return found

    def close(self) -> None:
        """Free the index."""
        if self.corpus is not None:
            self.corpus.close()


class OwnMatches:
    """A cycle's matching of own topics (and local keywords): lines parsed once, each window's
    index built when a reader first needs it, each query matched once per window."""

    def __init__(self, store: Store, cycle_id: int, arrived: Mapping[str, Paper]):
        self.store, self.cycle_id = store, cycle_id
        self.arrived = arrived  # this cycle's new papers (recorded as arrived when planned)
        self.parsed: Recent[str, Topic | None] = Recent(KEPT)
        self.windows: dict[int | None, MatchWindow] = {}
        self.skipped: set[str] = set()  # stored lines that no longer parse

    def topic(self, line: str) -> Topic | None:
        """Return a stored line's query, or None if it no longer parses (it is skipped)."""
        if line in self.parsed:
            return self.parsed.get(line)
        try:
            topic: Topic | None = parse(line)
        except TopicError:
            topic = None
            self.skipped.add(line)
        self.parsed.put(line, topic)
        return topic

    def window(self, since: int | None) -> MatchWindow:
        """Return the papers that arrived after cycle `since` (None: in this cycle alone)."""
        if since not in self.windows:
            papers: dict[str, Paper] = {}
            if since is not None:
                earlier = self.store.arrivals_between(since, self.cycle_id)
                if len(earlier) + len(self.arrived) > MAX_WINDOW_PAPERS:
                    keep = max(MAX_WINDOW_PAPERS - len(self.arrived), 0)
                    log.warning(
                        "own topics: a news window since cycle %d holds %d papers; matching "
                        "the newest %d",
                        since,
                        len(earlier) + len(self.arrived),
                        keep + len(self.arrived),
                    )
                    earlier = earlier[len(earlier) - keep :] if keep else []
                papers = self.store.papers(earlier)
            papers.update(self.arrived)
            self.windows[since] = MatchWindow(papers)
        return self.windows[since]

    def matches(self, lines: Sequence[str], since: int | None) -> Matches:
        """Return a reader's lines that matched papers of their window, with those papers."""
        window = self.window(since)
        found = []
        for line in lines:
            if (ids := window.lines.get(line)) is None:
                topic = self.topic(line)
                ids = window.lines.put(line, window.match(topic) if topic is not None else ())
            if ids:
                found.append((line, ids))
        return tuple(found)

    def papers(self, since: int | None) -> Mapping[str, Paper]:
        """Return the papers of a window."""
        return self.window(since).papers

    def close(self) -> None:
        """Free the windows' indexes; log (once a cycle) the stored lines that were skipped."""
        for window in self.windows.values():
            window.close()
        self.windows.clear()
        if self.skipped:
            log.warning(
                "own topics: %d stored topic line(s) no longer parse and were skipped this "
                "cycle; `digest check` names them",
                len(self.skipped),
            )


def with_own(sections: Sections, own: Matches, papers: Mapping[str, Paper]) -> Sections:
    """Add a reader's own topics to the sections of their keywords: each own topic's papers
    not shown already, in a section titled by its line, and every paper's other sections
    (keywords and own topics) named in its "Also in"."""
    lines_of: dict[str, list[str]] = {}  # paper id -> the own lines that matched it, in order
    for line, ids in own:
        for paper_id in ids:
            lines_of.setdefault(paper_id, []).append(line)
    placed: set[str] = set()
    found: Sections = []
    for name, items in sections:
        tagged = []
        for paper, tags in items:
            placed.add(paper.id)
            extra = tuple(line for line in lines_of.get(paper.id, ()) if line not in tags)
            tagged.append((paper, tags + extra))
        found.append((name, tagged))
    for line, ids in own:
        mine = []
        for paper_id in ids:
            if paper_id in placed:
                continue
            placed.add(paper_id)
            mine.append((papers[paper_id], tuple(o for o in lines_of[paper_id] if o != line)))
        if mine:
            found.append((line, mine))
    return found
