"""One-click unsubscribe: GET shows a button (mail scanners open links), POST acts."""

from __future__ import annotations

import logging

from aiohttp import web

from .base import Endpoint, mask

log = logging.getLogger(__name__)


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
        """GET /unsubscribe: show a button; never unsubscribe (scanners open links)."""
        signed = self.endpoint.signed
        link = signed.parse(request)
        if link is None:
            return self.refused()
        email = await self.endpoint.read(lambda store: signed.address(store, link))
        if email is None:
            return self.refused()
        return self.endpoint.page("confirm", masked=mask(email), token=link.token)

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
