"""A reader's own topics on their manage page: the box read and checked, what each line found."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..matching import Matcher
from ..store import QueryTooLong, Store
from ..store.corpus import HistoryCorpus, RecentPapers
from ..topics import Topic, TopicError, parse, parse_lines

log = logging.getLogger(__name__)

FIELD = "own_topics"  # the text area's name
RECENT_DAYS = 30  # what a saved line is tried on: the papers first seen in these days
EXAMPLES = 3  # titles shown of each line's matches, newest first
COUNT_SECONDS = 1.5  # what a page's lines may take to match; those left are not counted this time


@dataclass(frozen=True)
class OwnBox:
    """What the reader sent in the box: their text as typed, the lines to keep, the mistakes."""

    text: str
    lines: tuple[str, ...]  # each topic once, blank lines dropped, spaces as parse() keeps them
    errors: tuple[TopicError, ...]


@dataclass(frozen=True)
class LineFound:
    """How one saved line did lately: how many papers it matched, and the newest titles.

    count None: not counted, because the line no longer reads (`problem` says why) or, with
    no problem, because the page ran out of time for it.
    """

    line: str
    count: int | None
    titles: tuple[str, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class OwnSection:
    """The manage page's own-topics part: the box's text, its mistakes, the saved lines' counts."""

    text: str
    limit: int
    errors: tuple[TopicError, ...] = ()
    found: tuple[LineFound, ...] = ()
    days: int = RECENT_DAYS


def read_box(form: Any, limit: int) -> OwnBox | None:
    """Read and check the posted box (None: the form has none, the topics stay as they are)."""
    if FIELD not in form:
        return None
    text = str(form.get(FIELD, ""))
    filled = sum(1 for line in text.splitlines() if line.strip())
    if filled > 2 * limit:  # not worth reading line by line
        error = TopicError(f"you can have at most {limit} topics; remove {filled - limit}")
        return OwnBox(text, (), (error,))
    topics, errors = parse_lines(text, limit)
    return OwnBox(text, tuple(t.line for t in topics), tuple(errors))


class Tries:
    """Saved lines tried on the recent papers, for the manage page; what was read of those
    papers is kept for the next page while no paper arrives (the moment moves by the hour)."""

    def __init__(self, seconds: float = COUNT_SECONDS):
        self.seconds = seconds
        self.kept: tuple[tuple[int, str], RecentPapers] | None = None  # (stamp, generation), papers

    def run(self, store: Store, lines: tuple[str, ...], now: datetime) -> tuple[LineFound, ...]:
        """Match saved lines against the papers first seen in the last RECENT_DAYS (from the
        hour), within `seconds` (one Matcher a page: a term shared by lines is looked up once)."""
        if not lines:
            return ()
        since = (now - timedelta(days=RECENT_DAYS)).replace(minute=0, second=0, microsecond=0)
        stamp = (store.arrivals_stamp(), store.generation())
        kept = self.kept
        corpus = HistoryCorpus(store, since, kept[1] if kept and kept[0] == stamp else None)
        self.kept = stamp, corpus.known
        topics: list[Topic | TopicError] = []
        for line in lines:
            try:
                topics.append(parse(line))
            except TopicError as exc:  # stored before the syntax changed
                topics.append(exc)
        # What the lines need of the papers, read whole (bounded by the papers, kept for the
        # next page); then the lines themselves, which a reader writes, within the time.
        corpus.prepare(t.field for q in topics if isinstance(q, Topic) for c in q.clauses
                       for t in c.terms)  # fmt: skip
        end = time.monotonic() + self.seconds
        matcher = Matcher(corpus)
        found: list[LineFound] = []
        with contextlib.suppress(QueryTooLong), store.deadline(self.seconds):
            for line, topic in zip(lines, topics, strict=True):
                if time.monotonic() > end:
                    break
                if isinstance(topic, TopicError):
                    found.append(LineFound(line, None, problem=topic.message))
                    continue
                ids = matcher.match(topic)
                found.append(LineFound(line, len(ids), tuple(store.newest_titles(ids, EXAMPLES))))
        if len(found) < len(lines):
            log.warning(
                "web: counted %d of a reader's %d own topics in %gs; the rest are left out",
                len(found), len(lines), self.seconds,
            )  # fmt: skip
            found += [LineFound(line, None) for line in lines[len(found) :]]
        return tuple(found)
