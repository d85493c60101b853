"""A cycle's distinct digests: one body per set of topics (list and own), schedule window
and abstracts."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from .config import Settings
from .keywords import slugs
from .links import Links
from .models import KeywordResult, Paper
from .own_matches import Matches, OwnMatches, with_own
from .presentation import long_date, sections_for
from .ranker import Arranged, Plain, Ranker
from .readers import Due, Reader
from .recipes import Recipe, renderer_for
from .render import Papers, Renderer
from .store import Store
from .topics import text_words, words


@dataclass(frozen=True)
class NewsWindow:
    """The news of the cycles after a reader's previous digest, up to this one."""

    new_by_key: dict[str, list[str]]
    earlier: dict[str, set[str]]
    papers: dict[str, Paper]
    since: date | None  # the day of the previous digest (None: this cycle only)


class EditionBuilder:
    """Render each distinct digest of a cycle once, and store it as an edition."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        results: dict[str, KeywordResult],
        cycle_id: int,
        day: date,
        own: OwnMatches | None = None,
        ranker: Ranker | None = None,
    ):
        self.settings, self.store, self.results = settings, store, results
        self.ranker = ranker  # orders each section (None: as found, newest first)
        self.own = own  # readers' own topics, matched over each news window (None: ignored)
        self.cycle_id, self.day = cycle_id, day
        self.names = {key: result.keyword for key, result in results.items()}
        self.current = {key: result.new for key, result in results.items() if result.new}
        self.windows: dict[int | None, NewsWindow] = {}
        self.previous = store.previous_cycle(cycle_id)  # the cycle before this one, or 0
        self.renderers: dict[str, Renderer] = {}
        self.ids: dict[tuple, int | None] = {}
        self.plains: dict[tuple, Plain] = {}
        self.with_arrivals: dict[
            int | None, dict[str, Paper]
        ] = {}  # for own topics' ranking  # each topic set's sections in the plain order
        self.count = 0

    def edition_for(self, reader: Reader, due: Due) -> int | None:
        """Return the id of the edition a reader gets (None: no news for them)."""
        abstracts = reader.abstracts or self.settings.abstracts
        if due.since is not None and due.since >= self.previous:
            due = replace(due, since=None)  # their last digest was yesterday's: today's news
        if reader.own and self.own is not None:
            # What the body shows of their own topics: each line that matched, and what.
            own = self.own.matches(reader.own, due.since)
            key: tuple = (reader.topics, due.since, abstracts, due.resumed, own)
        else:
            own, key = None, (reader.topics, due.since, abstracts, due.resumed)
        voter = reader.key if self.ranker and self.ranker.personal(reader.key) else None
        key += (voter,)  # their votes order their digest: a body of their own
        if key not in self.ids:
            personal = bool(own) or voter is not None  # a body (nearly) theirs alone
            self.ids[key] = self._render(reader.topics, due, abstracts, own, voter, personal)
        return self.ids[key]

    def _plain(self, topics: tuple[str, ...], since: int | None, own: Matches | None) -> Plain:
        """Return the sections of these topics (and own matches) in the plain order, once."""
        key = (topics, since, own)
        if key not in self.plains or own:  # own topics: hardly ever the same twice
            window = self.window(since)
            keys = tuple(k for k in topics if k in window.new_by_key)
            sections = sections_for(
                keys, window.new_by_key, window.earlier, window.papers, self.names
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
                    known = set(new_by_key.get(key, ()))
                    new_by_key.setdefault(key, []).extend(i for i in ids if i not in known)
                start = self.store.cycle_day(since, self.settings.timezone)
            all_new = {i for ids in new_by_key.values() for i in ids}
            before = self.cycle_id if since is None else since + 1
            self.windows[since] = NewsWindow(
                new_by_key,
                self.store.earlier_keywords(all_new, before),
                self.store.papers(all_new),
                start,
            )
        return self.windows[since]

    def _render(
        self,
        topics: tuple[str, ...],
        due: Due,
        abstracts: str,
        own: Matches | None = None,
        voter: str | None = None,
        personal: bool = False,
    ) -> int | None:
        """Render and store one digest (`own`: the reader's own topics' matches, if any;
        `voter`: the reader whose votes order it, if any; `personal`: hardly anyone else gets
        it, so it is rendered when sent)."""
        window = self.window(due.since)
        keys = tuple(k for k in topics if k in window.new_by_key)
        plain = self._plain(topics, due.since, own)
        if not plain.sections:
            return None
        listed = sum(1 for title, _ in plain.sections if title in self.names.values())
        if self.ranker is None:
            arranged = Arranged(plain.sections, {}, {}, 0, {})
        else:
            arranged = self.ranker.arrange(plain, voter)
        sections = arranged.sections
        notes = _notes(self.results, keys)
        if due.resumed is not None:
            notes.append(
                f"Your pause ended on {long_date(due.resumed)}: this email covers only the "
                "papers announced since."
            )
        browser, more, own_more = self._links(topics, keys, window.since)
        followed = [self.names[k] for k in topics]
        if own is not None:  # they have own topics: the footer says so, their page lists them
            followed.append("your own topics")
            browser = browser if topics else None  # the day's page shows none of theirs
            query = Links.mine_query(self.day, window.since)
            for line, _ in sections[listed + arranged.picks :]:
                if line not in more:
                    own_more.setdefault(line, query)
        return self._edition(
            topics, abstracts, personal,
            sections,
            self.day,
            notes,
            followed,
            browser,
            more,
            since=window.since,
            feedback=Links(self.settings.base_url).feedback,  # 👍 / 👎 on each paper
            own_more=own_more,
            reasons=arranged.reasons,
            highlights=arranged.highlights,
            picks=arranged.picks,
            totals=arranged.totals,
            max_per_topic=self.settings.max_per_topic,
        )  # fmt: skip

    def _edition(
        self,
        keys: tuple[str, ...],
        abstracts: str,
        personal: bool,
        sections: Papers,
        day: date,
        notes: Sequence[str],
        topics: Sequence[str],
        browser_url: str | None,
        more_urls: dict[str, str],
        *,
        since: date | None,
        feedback: Callable[[str, str, str], str] | None,
        own_more: Mapping[str, str],
        reasons: Mapping[str, str] | None = None,
        highlights: Mapping[str, Collection[str]] | None = None,
        max_per_topic: int | None = None,
        picks: int = 0,
        totals: Mapping[str, int] | None = None,
    ) -> int:
        """Store one digest, given Renderer.edition's arguments: a shared one rendered now, a
        personal one (hardly anyone else gets it) as its recipe, which `bodies` renders when
        it is sent, into the same bytes."""
        recipe = Recipe.of(
            abstracts, sections, day, notes, topics, browser_url, more_urls, since=since,
            feedback=feedback, own_more=own_more, reasons=reasons, highlights=highlights,
            max_per_topic=max_per_topic, picks=picks, totals=totals,
        )  # fmt: skip
        self.count += 1
        if personal:
            return self.store.add_recipe(self.cycle_id, keys, recipe.papers, recipe.dumps())
        papers = {paper.id: paper for _, items in sections for paper, _ in items}
        body = recipe.render(self._renderer(abstracts), papers, feedback)
        return self.store.add_edition(
            self.cycle_id, keys, body.papers, body.subject, body.text, body.html,
            body.placeholders,
        )  # fmt: skip

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


def _notes(results: dict[str, KeywordResult], keys: tuple[str, ...]) -> list[str]:
    """Return the email's notes about keywords whose fetch hit the bound."""
    return [
        f"arXiv had more than {results[k].limit} new papers for {results[k].keyword} today; "
        f"only the newest {results[k].limit} were fetched (the list owner should narrow this "
        "topic)."
        for k in keys
        if results[k].limit is not None
    ]
