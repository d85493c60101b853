"""One-click unsubscribe: GET shows a button (mail scanners open links), POST acts."""

from __future__ import annotations

import logging

from aiohttp import web

from ..tokens import TokenError, parse_token, verify_token
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

    async def address(self, request: web.Request) -> str | None:
        """Return the address a request's token genuinely stands for, or None."""
        token = request.query.get("token")
        try:
            token_id = parse_token(token)
        except TokenError:
            return None
        email = await self.endpoint.db(lambda store: store.recipient(token_id))
        try:
            return verify_token(self.endpoint.secret or b"", token or "", email)
        except TokenError:
            if email is not None:  # a link we mailed, its signature not this secret's
                log.warning(
                    "web: a link for %s has a signature the current secret did not make: "
                    "DIGEST_SECRET changed since it was mailed (or the link was altered)",
                    mask(email),
                )
            return None

    def refused(self) -> web.Response:
        """Answer a bad link with a page that reveals nothing about anyone."""
        return self.endpoint.page("invalid", status=400)

    async def confirm(self, request: web.Request) -> web.Response:
        """GET /unsubscribe: show a button; never unsubscribe (scanners open links)."""
        email = await self.address(request)
        if email is None:
            return self.refused()
        return self.endpoint.page("confirm", masked=mask(email), token=request.query["token"])

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """POST /unsubscribe: the form button or RFC 8058 one-click; repeating is harmless."""
        await request.read()  # urlencoded or multipart "List-Unsubscribe=One-Click"
        email = await self.address(request)
        if email is None:
            return self.refused()
        queued = await self.endpoint.record("unsubscribed", email)
        return self.endpoint.page(
            "done", masked=mask(email), token=request.query["token"], queued=queued
        )

    async def resubscribe(self, request: web.Request) -> web.Response:
        """POST /resubscribe: undo an unsubscribe."""
        await request.read()
        email = await self.address(request)
        if email is None:
            return self.refused()
        queued = await self.endpoint.record("resubscribed", email)
        return self.endpoint.page(
            "resubscribed", masked=mask(email), token=request.query["token"], queued=queued
        )
