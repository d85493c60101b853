"""A reader's digest of some days in full, each section in the order their email gave it: what an
email's "N more" opens (the page /mine).

The email's steps again, over the history: the news of the cycles of those days, grouped by the
reader's keywords as the email groups them, the papers that arrived then matched against their
own topics, and the same Ranker over the same papers with their votes as they stood when the
last of those cycles planned its mail.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from .config import Settings
from .models import Paper
from .own_matches import MAX_WINDOW_PAPERS, MatchWindow, Sections, with_own
from .presentation import sections_for
from .ranker import Ranker
from .readers import Reader
from .store import Store
from .topics import TopicError, parse, text_words, words

WINDOW = "full list"  # the Ranker's name for the one window it is asked about


class FullList(NamedTuple):
    """A reader's sections over some days, as their email ordered them, none cut short."""

    sections: Sections  # one keyword's section, or their own topics' sections
    reasons: dict[str, str]  # paper id -> the title of the liked paper that lifted it
    highlights: dict[str, frozenset[str]]  # paper id -> its section's words it has
    broken: list[str]  # own topic lines that no longer parse (skipped)


def full_list(
    settings: Settings,
    store: Store,
    reader: Reader,
    start: datetime,
    end: datetime,
    topic: str | None = None,
) -> FullList:
    """Return a reader's sections of the cycles planned from `start` up to `end`, ordered as
    those cycles' email ordered them: a keyword's (`topic`, its key; shown even if they follow
    it no more), or else their own topics'."""
    broken = _broken(reader.own) if settings.web_personal_topics else []
    cycles = store.planned_cycles(start, end)
    if not cycles:
        return FullList([], {}, {}, broken)
    first, last, planned = cycles[0][0], cycles[-1][0], cycles[-1][1]
    names = {k.key: k.name for k in settings.keywords}
    news = store.news_between(first - 1, last + 1)
    ids = {i for found in news.values() for i in found}
    papers = store.papers(ids)
    keys = tuple(k for k in names if k in news and (k in reader.topics or k == topic))
    earlier = store.earlier_keywords(ids, first)
    sections = sections_for(keys, news, earlier, papers, names, reader.topics)
    listed = len(sections)
    queries = {names[k]: words(names[k]) for k in news if k in names}
    scored: dict[str, Paper] = dict(papers)  # what the text scores are computed over
    if settings.web_personal_topics and reader.own:
        arrived = store.papers(store.arrivals_between(first - 1, last + 1)[-MAX_WINDOW_PAPERS:])
        window = MatchWindow(arrived)
        try:
            own = []
            for line in reader.own:
                if line not in broken and (found := window.match(query := parse(line))):
                    own.append((line, found))
                    queries[line] = text_words(query)
        finally:
            window.close()
        if own:
            sections = with_own(sections, tuple(own), arrived)
            scored.update(arrived)
    if topic is not None:  # each section is ordered on its own: only the one asked for
        sections = [(t, items) for t, items in sections[:listed] if t == names[topic]]
    else:
        sections = sections[listed:]
    votes = [v for v in store.votes_of(reader.key) if v.voted_at <= planned]  # as they were
    ranker = Ranker(
        store, planned, top_picks=0, limit=len(scored) or 1,
        votes={reader.key: votes} if votes else {},
    )  # fmt: skip
    plain = ranker.plain(sections, queries, scored, WINDOW)
    arranged = ranker.arrange(plain, reader.key)
    return FullList(arranged.sections, arranged.reasons, arranged.highlights, broken)


def _broken(lines: tuple[str, ...]) -> list[str]:
    """Return the lines that no longer parse."""
    found = []
    for line in lines:
        try:
            parse(line)
        except TopicError:
            found.append(line)
    return found
