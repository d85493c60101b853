"""A cycle's digests: each reader's order decided, each distinct order made into its recipe
(its sections, in the order its reader's topics and votes give)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from .config import Settings
from .keywords import slugs
from .links import Links
from .models import KeywordResult, Paper
from .orders import Order
from .own_matches import Matches, OwnMatches, with_own
from .presentation import long_date, sections_for
from .ranker import Arranged, Plain, Ranker
from .readers import Due, Reader
from .recipes import Recipe, renderer_for
from .render import Rendered, Renderer
from .store import PlannedEdition, Store
from .topics import text_words, words


@dataclass(frozen=True)
class NewsWindow:
    """The news of the cycles after a reader's previous digest, up to this one."""

    new_by_key: dict[str, list[str]]
    earlier: dict[str, set[str]]
    papers: dict[str, Paper]
    since: date | None  # the day of the previous digest (None: this cycle only)


class EditionBuilder:
    """Make a cycle's digests: its news windows read once, each topic set's plain order
    computed once, each order made into its recipe (a shared one when planned, a personal one
    when sent: `for_cycle` rebuilds the same from the store)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        cycle_id: int,
        day: date,
        news: Mapping[str, Sequence[str]],
        own: OwnMatches | None = None,
        ranker: Ranker | None = None,
        notes: Mapping[str, str] | None = None,
    ):
        self.settings, self.store = settings, store
        self.ranker = ranker  # orders each section (None: as found, newest first)
        self.own = own  # readers' own topics, matched over each news window (None: ignored)
        self.cycle_id, self.day = cycle_id, day
        self.names = {k.key: k.name for k in settings.keywords}
        self.current = {key: list(ids) for key, ids in news.items() if ids and key in self.names}
        self.notes = dict(notes or {})  # a keyword's note (its fetch hit the bound), by key
        self.windows: dict[int | None, NewsWindow] = {}
        self.previous = store.previous_cycle(cycle_id)  # the cycle before this one, or 0
        self.renderers: dict[str, Renderer] = {}
        self.plains: dict[tuple, Plain] = {}  # each topic set's sections in the plain order
        self.listing: dict[tuple, bool] = {}  # whether a set of keywords has news (_listed)
        self.with_arrivals: dict[int | None, dict[str, Paper]] = {}  # for own topics' ranking

    @classmethod
    def for_cycle(cls, settings: Settings, store: Store, cycle_id: int) -> EditionBuilder:
        """Return the builder of a planned cycle's digests, read back from the store (to make
        its personal orders when they are sent)."""
        moment = store.planned_at(cycle_id)
        if moment is None:
            raise ValueError(f"cycle {cycle_id} was never planned: its editions cannot be made")
        own = None
        if settings.web_personal_topics:
            arrived = store.papers(store.arrivals_in(cycle_id))
            own = OwnMatches(store, cycle_id, arrived)
        ranker = Ranker(store, moment, settings.top_picks, settings.max_per_topic)
        day = moment.astimezone(settings.timezone).date()
        news = store.news_between(cycle_id - 1, cycle_id + 1)
        return cls(settings, store, cycle_id, day, news, own, ranker)

    def close(self) -> None:
        """Free the own topics' indexes (a builder of `for_cycle`: planning closes its own)."""
        if self.own is not None:
            self.own.close()

    def order_for(self, reader: Reader, due: Due) -> Order | None:
        """Return what a reader gets this cycle (None: no news for them)."""
        since = due.since
        if since is not None and since >= self.previous:
            since = None  # their last digest was yesterday's: today's news
        window = self.window(since)
        keys = tuple(k for k in reader.topics if k in window.new_by_key)
        lines = reader.own if reader.own and self.own is not None else None
        listed = bool(keys) and self._listed(reader.topics, since)
        if not listed and not (lines and self.own and self.own.matches(lines, since)):
            return None
        voter = reader.key if self.ranker and self.ranker.personal(reader.key) else None
        return Order(
            reader.topics,
            since,
            reader.abstracts or self.settings.abstracts,
            due.resumed,
            lines,
            voter,  # their votes order their digest: a body of their own
            tuple(self.notes[k] for k in keys if k in self.notes),
        )

    def _listed(self, topics: tuple[str, ...], since: int | None) -> bool:
        """Tell whether these keywords have news for a reader of them all (a paper they got
        under one of them before is none), once per set of keywords and window."""
        if (topics, since) not in self.listing:
            window = self.window(since)
            keys = tuple(k for k in topics if k in window.new_by_key)
            sections = sections_for(
                keys, window.new_by_key, window.earlier, window.papers, self.names, topics
            )
            self.listing[topics, since] = bool(sections)
        return self.listing[topics, since]

    def rendered(self, order: Order) -> Rendered | None:
        """Return the body of an order, rendered (None: no news for it)."""
        made = self._make(order)
        if made is None:
            return None
        recipe, papers = made
        return recipe.render(self._renderer(order.abstracts), papers, self._feedback())

    def recipe(self, order: Order) -> Recipe | None:
        """Return the recipe of an order: Renderer.edition's arguments (None: no news)."""
        made = self._make(order)
        return None if made is None else made[0]

    def _make(self, order: Order) -> tuple[Recipe, Mapping[str, Paper]] | None:
        """Return an order's recipe and the papers it may name."""
        own = None
        if order.own is not None and self.own is not None:
            # What the body shows of their own topics: each line that matched, and what.
            own = self.own.matches(order.own, order.since)
        window = self.window(order.since)
        keys = tuple(k for k in order.topics if k in window.new_by_key)
        plain = self._plain(order.topics, order.since, own)
        if not plain.sections:
            return None
        listed = sum(1 for title, _ in plain.sections if title in self.names.values())
        if self.ranker is None:
            arranged = Arranged(plain.sections, {}, {}, 0, {})
        else:
            arranged = self.ranker.arrange(plain, order.voter)
        sections = arranged.sections
        notes = list(order.notes)
        if order.resumed is not None:
            notes.append(
                f"Your pause ended on {long_date(order.resumed)}: this email covers only the "
                "papers announced since."
            )
        browser, more, own_more = self._links(order.topics, keys, window.since)
        followed = [self.names[k] for k in order.topics if k in self.names]
        if own is not None:  # they have own topics: the footer says so, their page lists them
            followed.append("your own topics")
            browser = browser if order.topics else None  # the day's page shows none of theirs
            query = Links.mine_query(self.day, window.since)
            for line, _ in sections[listed + arranged.picks :]:
                if line not in more:
                    own_more.setdefault(line, query)
        recipe = Recipe.of(
            order.abstracts, sections, self.day, notes, followed, browser, more,
            since=window.since, feedback=self._feedback(), own_more=own_more,
            reasons=arranged.reasons, highlights=arranged.highlights, picks=arranged.picks,
            totals=arranged.totals, max_per_topic=self.settings.max_per_topic,
        )  # fmt: skip
        papers = self._scored(order.since, window) if own is not None else window.papers
        return recipe, papers

    def _feedback(self) -> Callable[[str, str, str], str]:
        """Return the builder of 👍 / 👎 links on each paper."""
        return Links(self.settings.base_url).feedback

    def _plain(self, topics: tuple[str, ...], since: int | None, own: Matches | None) -> Plain:
        """Return the sections of these topics (and own matches) in the plain order, once."""
        key = (topics, since, own is not None)
        if key not in self.plains or own:  # own topics: hardly ever the same twice
            window = self.window(since)
            keys = tuple(k for k in topics if k in window.new_by_key)
            sections = sections_for(
                keys, window.new_by_key, window.earlier, window.papers, self.names, topics
            )
            papers = window.papers
            queries = {self.names[k]: words(self.names[k]) for k in keys}
            if own and self.own is not None:
                sections = with_own(sections, own, self.own.papers(since))
                papers = self._scored(since, window)
                for line, _ in own:
                    if (topic := self.own.topic(line)) is not None:
                        queries[line] = text_words(topic)
            if self.ranker is None:
                plain = Plain(sections, {}, {}, {}, None)
            else:
                plain = self.ranker.plain(sections, queries, papers, (since, own is not None))
            if own:
                return plain  # kept, it would only hold memory
            self.plains[key] = plain
        return self.plains[key]

    def _scored(self, since: int | None, window: NewsWindow) -> dict[str, Paper]:
        """Return a window's papers and its arrivals (what own topics match), one dict."""
        if since not in self.with_arrivals:
            assert self.own is not None
            self.with_arrivals[since] = {**window.papers, **self.own.papers(since)}
        return self.with_arrivals[since]

    def window(self, since: int | None) -> NewsWindow:
        """Return the news of the cycles after `since` (None: of this cycle alone)."""
        if since not in self.windows:
            new_by_key = {k: list(ids) for k, ids in self.current.items()}
            start = None
            if since is not None:
                for key, ids in self.store.news_between(since, self.cycle_id).items():
                    if key not in self.names:
                        continue
                    known = set(new_by_key.get(key, ()))
                    new_by_key.setdefault(key, []).extend(i for i in ids if i not in known)
                start = self.store.cycle_day(since, self.settings.timezone)
            all_new = {i for ids in new_by_key.values() for i in ids}
            before = self.cycle_id if since is None else since + 1
            papers = self.store.papers(all_new)
            if len(papers) < len(all_new):  # a damaged history: what is left is still mailed
                kept = {k: [i for i in ids if i in papers] for k, ids in new_by_key.items()}
                new_by_key = {k: ids for k, ids in kept.items() if ids}
            self.windows[since] = NewsWindow(
                new_by_key, self.store.earlier_keywords(all_new, before), papers, start
            )
        return self.windows[since]

    def _renderer(self, abstracts: str) -> Renderer:
        if abstracts not in self.renderers:
            self.renderers[abstracts] = renderer_for(self.settings, abstracts)
        return self.renderers[abstracts]

    def _links(
        self, topics: tuple[str, ...], keys: tuple[str, ...], since: date | None
    ) -> tuple[str | None, dict[str, str], dict[str, str]]:
        """Return this email's page in the reading room, where each topic's full list is (a
        link), and the topics whose full list is the reader's own page, in their order (what
        follows its link: Links.mine_query), by section title.

        A digest of several days (`since`) has no one day page. With the reading room off, a
        topic's full list is arXiv's own listing of it.
        """
        keywords = {k.key: k for k in self.settings.keywords}
        if not self.settings.web_pages:
            return None, {keywords[k].name: keywords[k].listing_url() for k in keys}, {}
        slug = slugs(self.settings.keywords)
        mine = {keywords[k].name: Links.mine_query(self.day, since, slug[k]) for k in keys}
        if since is not None:
            return None, {}, mine
        return Links(self.settings.base_url).day(self.day, [slug[k] for k in topics]), {}, mine


class Editions:
    """A cycle's editions as planned: each distinct order once, a shared one rendered and
    stored now, a personal one planned with its first message (made when sent)."""

    def __init__(self, builder: EditionBuilder):
        self.builder = builder
        self.ids: dict[Order, int | PlannedEdition | None] = {}
        self.count = 0  # distinct digests

    def edition_for(self, reader: Reader, due: Due) -> int | PlannedEdition | None:
        """Return the edition a reader gets (None: no news for them)."""
        order = self.builder.order_for(reader, due)
        if order is None:
            return None
        if order not in self.ids:
            self.ids[order] = self._edition(order)
            self.count += self.ids[order] is not None
        return self.ids[order]

    def _edition(self, order: Order) -> int | PlannedEdition | None:
        builder = self.builder
        if order.personal:
            return PlannedEdition(builder.cycle_id, order.topics, order.dumps())
        if (body := builder.rendered(order)) is None:
            return None
        return builder.store.add_edition(
            builder.cycle_id, order.topics, body.papers, body.subject, body.text, body.html,
            body.placeholders,
        )  # fmt: skip


def notes(results: Mapping[str, KeywordResult]) -> dict[str, str]:
    """Return the email's note about each keyword whose fetch hit the bound, by key."""
    return {
        k: f"arXiv had more than {r.limit} new papers for {r.keyword} today; only the newest "
        f"{r.limit} were fetched (the list owner should narrow this topic)."
        for k, r in results.items()
        if r.limit is not None
    }
