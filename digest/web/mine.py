"""A reader's page of their own topics' papers, by their signed link: what a digest cut short."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from aiohttp import web

from ..own_matches import page_sections
from ..presentation import PaperItem, abstract_of, long_date
from ..store import Store
from .base import Endpoint
from .unsubscribe import Unsubscribing

log = logging.getLogger(__name__)

MAX_DAYS = 8  # days one page covers at most: a weekly digest's, and a little more


class OwnPages:
    """GET /mine?token=…&day=YYYY-MM-DD[&since=YYYY-MM-DD]: the reader's own topics' papers
    that arrived that day (or after `since`, up to that day), each topic in full."""

    def __init__(self, endpoint: Endpoint, links: Unsubscribing):
        self.endpoint = endpoint
        self.signed = endpoint.signed  # the manage link's token: personal and revocable
        self.links = links  # the refusal the signed pages give

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [web.get("/mine", self.show)]

    async def show(self, request: web.Request) -> web.Response:
        """GET /mine: the page, built from the history (it changes nothing)."""
        link = self.signed.parse(request)
        if link is None:
            return self.links.refused()
        today = self.endpoint.clock().astimezone(self.endpoint.settings.timezone).date()
        day = _date(request.query.get("day")) or today
        since = _date(request.query.get("since"))
        if "day" in request.query and not _date(request.query["day"]):
            return self.endpoint.error_page(400)
        first = day if since is None or since >= day else since + timedelta(days=1)
        first = max(first, day - timedelta(days=MAX_DAYS - 1))
        zone = self.endpoint.settings.timezone
        start = datetime.combine(first, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)

        def build(store: Store) -> tuple | None:
            signed = self.signed.person(store, link)
            if signed is None:
                return None
            return (signed.reader.own, *page_sections(store, signed.reader.own, start, end))

        found = await self.endpoint.read(build)
        if found is None:
            return self.links.refused()
        lines, sections, totals, broken = found
        mode = self.endpoint.settings.abstracts
        shown = [
            (line, [PaperItem(p, tags, *abstract_of(p, mode)) for p, tags in items])
            for line, items in sections
        ]
        return self.endpoint.page(
            "mine",
            lines=lines,
            sections=shown,
            totals=totals,
            broken=broken,
            first=first,
            day=day,
            token=link.token,
            long_date=long_date,
        )


def _date(text: str | None) -> date | None:
    """Read a YYYY-MM-DD day, or None."""
    if not text or len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
