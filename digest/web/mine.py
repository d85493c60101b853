"""A reader's page of their papers, by their signed link: what a digest cut short, in full, in
the order of their email, with their 👍 / 👎 on every paper."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from aiohttp import web

from ..full_list import FullList, full_list
from ..keywords import slugs
from ..links import Links
from ..own_matches import MAX_PAGE_PAPERS
from ..presentation import PaperItem, abstract_of, long_date
from ..store import Store
from .base import Endpoint
from .unsubscribe import Unsubscribing

log = logging.getLogger(__name__)

MAX_DAYS = 8  # days one page covers at most: a weekly digest's, and a little more


class OwnPages:
    """GET /mine?token=…&day=YYYY-MM-DD[&since=YYYY-MM-DD][&topic=slug]: the reader's papers
    of the cycles of that day (or after `since`, up to that day), as their email ordered them:
    their own topics' sections, or one keyword's (`topic`), each in full."""

    def __init__(self, endpoint: Endpoint, links: Unsubscribing):
        self.endpoint = endpoint
        self.signed = endpoint.signed  # the manage link's token: personal and revocable
        self.links = links  # the refusal the signed pages give
        keywords = endpoint.settings.keywords
        self.topics = {slug: key for key, slug in slugs(keywords).items()}  # slug -> key
        self.names = {k.key: k.name for k in keywords}

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [web.get("/mine", self.show)]

    async def show(self, request: web.Request) -> web.Response:
        """GET /mine: the page, built from the history (it changes nothing)."""
        link = self.signed.parse(request)
        if link is None:
            return self.links.refused()
        settings = self.endpoint.settings
        today = self.endpoint.clock().astimezone(settings.timezone).date()
        day = _date(request.query.get("day")) or today
        since = _date(request.query.get("since"))
        if "day" in request.query and not _date(request.query["day"]):
            return self.endpoint.error_page(400)
        key = self.topics.get(request.query.get("topic", ""))
        if "topic" in request.query and key is None:
            return self.endpoint.error_page(400)
        first = day if since is None or since >= day else since + timedelta(days=1)
        first = max(first, day - timedelta(days=MAX_DAYS - 1))
        start = datetime.combine(first, time(0), settings.timezone)
        end = datetime.combine(day + timedelta(days=1), time(0), settings.timezone)

        def build(store: Store) -> tuple | None:
            signed = self.signed.person(store, link)
            if signed is None:
                return None
            return signed, full_list(settings, store, signed.reader, start, end, key)

        built = await self.endpoint.read(build)
        if built is None:
            return self.links.refused()
        signed, found = built
        sections = found.sections
        sign = Links(settings.base_url, self.endpoint.secret)
        tokens = sign.vote_tokens(signed.email, link.version)  # their vote links, signed
        return self.endpoint.page(
            "mine",
            topic=self.names[key] if key is not None else None,
            lines=signed.reader.own,
            sections=self._shown(sections, found, signed.reader.abstracts),
            totals={line: len(items) for line, items in sections},
            broken=found.broken if key is None else [],
            first=first,
            day=day,
            token=link.token,
            long_date=long_date,
            vote_url=lambda paper_id, vote: sign.feedback(paper_id, vote, tokens(paper_id, vote)),
        )

    def _shown(
        self, sections: list, found: FullList, abstracts: str | None
    ) -> list[tuple[str, list[PaperItem]]]:
        """Return the sections as the page shows them: each paper with its reason and words."""
        mode = abstracts or self.endpoint.settings.abstracts
        return [
            (
                title,
                [
                    PaperItem(
                        p,
                        tags,
                        *abstract_of(p, mode),
                        because=found.reasons.get(p.id),
                        words=found.highlights.get(p.id, frozenset()),
                    )
                    for p, tags in items[:MAX_PAGE_PAPERS]
                ],
            )
            for title, items in sections
        ]


def _date(text: str | None) -> date | None:
    """Read a YYYY-MM-DD day, or None."""
    if not text or len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
