"""The reading room: every paper of the history as pages, feeds and search results.

The same functions render the live pages (under base_url) and the static export (files with
relative links); `links.Links` says where each page lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from markupsafe import Markup

from . import latex
from .charts import sparkline
from .config import Settings
from .keywords import slugs
from .links import Links
from .presentation import PaperItem, long_date, sections_for
from .render import Renderer, make_environment
from .store import Cycle, QueryTooLong, Store

PAGE_SIZE = 50  # papers on a topic or search page
DAY_PAGE_SIZE = 100  # papers on a day page
FEED_SIZE = 50
MAX_PAGE = 2000  # pagination is bounded: 100,000 papers at 50 a page
MAX_QUERY = 200  # characters of a search query
ACTIVITY_DAYS = 30  # days of each topic's sparkline on the front page
MAX_TERMS = 8  # distinct words of a search query (phrases' words too); the rest are left out
_WORD_RE = re.compile(r'"([^"]*)"|(\S+)')


def search_terms(text: str) -> list[list[str]]:
    """Return the distinct words and "phrases" of what a person typed, in order, each as its
    words; repeats, in any case, count once."""
    terms: dict[str, list[str]] = {}
    for phrase, word in _WORD_RE.findall(text[:MAX_QUERY]):
        words = re.findall(r"\w+", phrase or word)
        if words:
            terms.setdefault(" ".join(words).casefold(), words)
    return list(terms.values())


def fts_query(text: str) -> str | None:
    """Turn what a person typed into a safe FTS5 MATCH: words and "phrases", all required.

    Every word is quoted, so no character has its FTS5 meaning (AND, NEAR, *, :, ^, …);
    repeats count once and only the first MAX_TERMS words are kept, phrases' words included
    (each costs a pass over its papers); returns None when nothing searchable is left.
    """
    kept, left = [], MAX_TERMS
    for words in search_terms(text):
        if left <= 0:
            break
        kept.append('"' + " ".join(words[:left]) + '"')
        left -= len(words)
    return " AND ".join(kept) or None


@dataclass(frozen=True)
class RoomPage:
    """A rendered page: its body, its content type and its status."""

    body: str
    content_type: str = "text/html"
    status: int = 200  # anything else is not cached (a search stopped at its deadline: 422)


class ReadingRoom:
    """Render the reading room's pages from the history."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.keywords = {k.key: k for k in settings.keywords}
        self.slugs = slugs(settings.keywords)
        self.by_slug = {slug: key for key, slug in self.slugs.items()}
        self.renderer = Renderer(make_environment(settings.templates), settings.name)
        self._days: tuple[str, dict[date, list[Cycle]]] | None = None

    def _page(self, template: str, links: Links, **context: Any) -> RoomPage:
        signup = links.signup() if self.settings.web_signup else None  # [web] signup on
        body = self.renderer.page(
            f"web/{template}.html", links=links, slugs=self.slugs, long_date=long_date,
            signup_url=signup, **context,
        )  # fmt: skip
        return RoomPage(body)

    def days(self, store: Store) -> dict[date, list[Cycle]]:
        """Return the days that had news, newest first, with their cycles (kept per cycle)."""
        generation = store.generation()
        if self._days is not None and self._days[0] == generation:
            return self._days[1]
        found: dict[date, list[Cycle]] = {}
        for cycle in store.news_cycles():
            found.setdefault(cycle.planned_at.astimezone(self.settings.timezone).date(), []).append(
                cycle
            )
        self._days = (generation, found)
        return found

    def index(self, store: Store, links: Links) -> RoomPage:
        """Render the front page: topics with counts and activity, the latest days, feeds."""
        totals = store.keyword_totals()
        topics = [(k, *totals.get(k.key, (0, None))) for k in self.settings.keywords]
        days = list(self.days(store).items())[:30]
        return self._page("index", links, topics=topics, days=days, activity=self.activity(store))

    def activity(self, store: Store) -> dict[str, Markup]:
        """Return each topic's sparkline: its new papers on each of the ACTIVITY_DAYS days up to
        the last day with news (so a page stays the same until the next news)."""
        last = store.last_change()
        if last is None:
            return {}
        zone = self.settings.timezone
        end = last.astimezone(zone).date()
        days = [end - timedelta(days=n) for n in range(ACTIVITY_DAYS - 1, -1, -1)]
        counts = {key: [0] * ACTIVITY_DAYS for key in self.keywords}
        for _, moment, key, new in store.news_since(datetime.combine(days[0], time(), zone)):
            slot = (moment.astimezone(zone).date() - days[0]).days
            if key in counts and 0 <= slot < ACTIVITY_DAYS:
                counts[key][slot] += new
        return {
            key: sparkline(
                values,
                f"{self.keywords[key].name}: {sum(values)} new papers in the {ACTIVITY_DAYS} "
                f"days to {long_date(end)}, at most {max(values)} a day",
            )
            for key, values in counts.items()
        }

    def topic(self, store: Store, links: Links, slug: str, page: int) -> RoomPage | None:
        """Render a page of a topic's papers, newest first; None if there is no such page."""
        key = self.by_slug.get(slug)
        if key is None:
            return None
        total = store.keyword_size(key)
        pages = max(1, -(-total // PAGE_SIZE))
        if not 1 <= page <= min(pages, MAX_PAGE):
            return None
        papers = store.recent_papers(key, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        items = [PaperItem(p, (), latex.text(p.abstract)) for p in papers]
        return self._page(
            "topic", links, keyword=self.keywords[key], slug=slug, items=items, total=total,
            page=page, pages=pages, **_neighbours(page, pages, lambda n: links.topic(slug, n)),
        )  # fmt: skip

    def day(
        self, store: Store, links: Links, day: date, topics: Sequence[str], page: int
    ) -> RoomPage | None:
        """Render a day's news (for a set of topics: exactly that day's email, in full)."""
        cycles = self.days(store).get(day)
        keys = [self.by_slug.get(slug) for slug in topics]
        if cycles is None or None in keys or len(set(keys)) != len(keys):
            return None
        cycle_ids = [c.id for c in cycles]
        news = store.cycle_news(cycle_ids)
        chosen = tuple(k for k in keys if k) or tuple(self.keywords)
        new_by_key = {k: news[k] for k in chosen if k in news}
        all_new = {i for ids in new_by_key.values() for i in ids}
        earlier = store.earlier_keywords(all_new, min(cycle_ids)) if topics else {}
        names = {k: self.keywords[k].name for k in chosen}
        sections = sections_for(
            tuple(k for k in chosen if k in new_by_key),
            new_by_key,
            earlier,
            store.papers(all_new),
            names,
            chosen,  # as the email of these topics showed them
        )
        flat = [
            (n, name, p, tags) for n, (name, items) in enumerate(sections, 1) for p, tags in items
        ]
        pages = max(1, -(-len(flat) // DAY_PAGE_SIZE))
        if not 1 <= page <= pages:
            return None
        shown = flat[(page - 1) * DAY_PAGE_SIZE : page * DAY_PAGE_SIZE]
        starts: dict[str, int] = {}  # the page each topic starts on, for the contents
        for index, (_, name, _, _) in enumerate(flat):
            starts.setdefault(name, index // DAY_PAGE_SIZE + 1)
        return self._page(
            "day", links, day=day, topics=topics, names=[names[k] for k in chosen if k],
            sections=list(_sections(shown)), totals={name: len(i) for name, i in sections},
            count=len(flat), page=page, pages=pages, anchor_pages=starts,
            **_neighbours(page, pages, lambda n: links.day(day, topics, n)),
        )  # fmt: skip

    def search(self, store: Store, links: Links, text: str, page: int) -> RoomPage | None:
        """Render the search page: the query shown back, and a page of its results.

        The search stops after [web] search_deadline seconds: the page then says it was too
        broad (422), and is not cached.
        """
        text = " ".join(text.split())[:MAX_QUERY]
        match = fts_query(text)
        try:
            with store.deadline(self.settings.web_room.search_deadline):
                found = store.search(match, PAGE_SIZE, (page - 1) * PAGE_SIZE) if match else None
        except QueryTooLong:
            broad = self._page(
                "search", links, query=text, searched=False, too_broad=True, items=[], total=0,
                page=1, pages=1, previous=None, following=None,
            )  # fmt: skip
            return replace(broad, status=422)
        papers, total = found or ([], 0)
        pages = max(1, -(-total // PAGE_SIZE))
        if not 1 <= page <= min(pages, MAX_PAGE):
            return None
        items = [PaperItem(p, (), latex.text(p.abstract)) for p in papers]
        left_out = sum(len(words) for words in search_terms(text)) > MAX_TERMS
        return self._page(
            "search", links, query=text, searched=match is not None, items=items, total=total,
            page=page, pages=pages, too_broad=False, left_out=left_out, max_terms=MAX_TERMS,
            **_neighbours(page, pages, lambda n: links.search_page(text, n)),
        )  # fmt: skip

    def feed(self, store: Store, links: Links, slug: str | None) -> RoomPage | None:
        """Render the Atom feed of a topic (or of everything): the newest announced papers."""
        key = self.by_slug.get(slug) if slug else None
        if slug and key is None:
            return None
        entries = store.feed(key, FEED_SIZE)
        # The feed changes when the list announces papers: its entries' <updated> is that day.
        updated = max((when for _, when in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
        body = self.renderer.env.get_template("feeds/feed.atom").render(
            list_name=self.settings.name,
            title=self.keywords[key].name if key else None,
            feed_id=links.feed_id(slug),
            self_url=links.feed(slug) if links.static else links.absolute().feed(slug),
            home=links.home() if links.static else links.absolute().home(),
            updated=updated,
            entries=entries,
        )
        return RoomPage(body, "application/atom+xml")


def _neighbours(page: int, pages: int, link: Any) -> dict[str, str | None]:
    """Return the links to the previous and the next page, where there are such pages."""
    return {
        "previous": link(page - 1) if page > 1 else None,
        "following": link(page + 1) if page < pages else None,
    }


def _sections(shown: list[tuple[int, str, Any, tuple[str, ...]]]) -> Iterator[dict[str, Any]]:
    """Group a page's slice of (section number, topic, paper, tags) back into sections."""
    current: dict[str, Any] | None = None
    for number, name, paper, tags in shown:
        if current is None or current["number"] != number:
            current = {"number": number, "keyword": name, "items": []}
            yield current
        current["items"].append(PaperItem(paper, tags, latex.text(paper.abstract)))
