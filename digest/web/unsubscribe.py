"""One-click unsubscribe: GET shows a button (mail scanners open links), POST acts."""

from __future__ import annotations

import logging

from aiohttp import web

from ..readers import WEEKDAYS, Reader, reader
from ..store import Store
from .base import Endpoint, mask
from .signed import Link

log = logging.getLogger(__name__)


def digest_name(person: Reader | None, list_name: str) -> str:
    """Return what a reader gets, as the unsubscribe page names it: 'the daily digest', 'the
    weekly digest (on Mondays)', or the list's emails for someone it no longer lists."""
    if person is None:
        return f"the emails of {list_name}"
    if person.frequency == "weekly" and person.weekday is not None:
        return f"the weekly digest (on {WEEKDAYS[person.weekday]}s)"
    return "the daily digest"


class Unsubscribing:
    """The unsubscribe and resubscribe pages, reached by a signed link."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [
            web.get("/unsubscribe", self.confirm),
            web.post("/unsubscribe", self.unsubscribe),
            web.post("/resubscribe", self.resubscribe),
        ]

    def refused(self) -> web.Response:
        """Answer a bad link with a page that reveals nothing about anyone."""
        return self.endpoint.page("invalid", status=400)

    async def confirm(self, request: web.Request) -> web.Response:
        """GET /unsubscribe: show a button; never unsubscribe (scanners open links). Name the
        reader's digest (daily, or weekly on their day), and link to their own page when the
        request carries a link that may open it (a digest's footer adds ?manage=)."""
        signed = self.endpoint.signed
        link = signed.parse(request)
        if link is None:
            return self.refused()
        candidates = [x for x in (link, signed.parse(request, "manage")) if x is not None]

        def look(store: Store) -> tuple[str, Link | None, Reader | None] | None:
            email = signed.address(store, link)
            if email is None:
                return None
            manages = next((x for x in candidates if signed.manager(store, x) == email), None)
            return email, manages, reader(self.endpoint.settings, store, email)

        found = await self.endpoint.read(look)
        if found is None:
            return self.refused()
        email, manages, person = found
        return self.endpoint.page(
            "confirm",
            masked=mask(email),
            token=link.token,
            digest=digest_name(person, self.endpoint.settings.name),
            weekly=person is not None and person.frequency == "weekly",
            manage=manages.token if manages else None,
        )

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """POST /unsubscribe: the form button or RFC 8058 one-click; repeating is harmless."""
        await request.read()  # urlencoded or multipart "List-Unsubscribe=One-Click"
        return await self._record(request, "unsubscribed", "done")

    async def resubscribe(self, request: web.Request) -> web.Response:
        """POST /resubscribe: undo an unsubscribe."""
        await request.read()
        return await self._record(request, "resubscribed", "resubscribed")

    async def _record(self, request: web.Request, action: str, page: str) -> web.Response:
        link = self.endpoint.signed.parse(request)
        if link is None:
            return self.refused()
        email, queued = await self.endpoint.record(action, link)
        if email is None:
            return self.refused()
        return self.endpoint.page(page, masked=mask(email), token=link.token, queued=queued)
