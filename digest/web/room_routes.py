"""The reading room's routes: pages, feeds and search, cached until a cycle records news."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlencode

from aiohttp import web

from ..links import Links
from ..numbers import whole_number
from ..room import MAX_QUERY, ReadingRoom, RoomPage
from ..store import Store
from .admission import Full, Gate, Rate
from .base import Endpoint
from .clients import client_network

log = logging.getLogger(__name__)

CACHE_SIZE = 512  # rendered pages kept in memory, newest used first
MAX_AGE = 300  # seconds a proxy or browser may reuse a page without asking
RETRY_BUSY = 5.0  # seconds a request refused because the reading room is busy should wait
REFUSALS = {
    429: (
        "Too many requests",
        "Many searches and pages came from your network in the last minute. "
        "Please wait a moment and try again.",
    ),
    503: (
        "The reading room is busy",
        "Many searches are running right now. Please try again in a few seconds.",
    ),
}


class RoomRoutes:
    """Serve the reading room from the read connections kept for the public pages.

    A page in the cache is answered at once; building one waits for one of [web]
    room_concurrency slots (503 past room_queue waiting) and counts toward the client
    network's room_rate (429 past it), so public traffic is bounded and never reaches the
    connections of the signed links and /healthz.
    """

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.room = ReadingRoom(endpoint.settings)
        self.links = Links(endpoint.settings.base_url).served()
        self.cache: OrderedDict[tuple[str, str], RoomPage | None] = OrderedDict()
        self.lock = threading.Lock()
        limits = endpoint.settings.web_room
        self.gate = Gate(limits.concurrency, limits.queue)
        self.rate = Rate(limits.rate)
        self._stamp: asyncio.Future[tuple[str, datetime | None]] | None = None

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [
            web.get("/", self.index),
            web.get("/topics/{slug}", self.topic),
            web.get("/days/{day}", self.day),
            web.get("/days/{day}/{topics}", self.day),
            web.get("/search", self.search),
            web.get("/feeds/{name}.atom", self.feed),
        ]

    async def stamp(self) -> tuple[str, datetime | None]:
        """Return the history's generation and last change, asked once for requests at once."""
        if self._stamp is None or self._stamp.done():
            self._stamp = asyncio.ensure_future(
                self.endpoint.database.stamp(lambda s: (s.generation(), s.last_change()))
            )
        return await asyncio.shield(self._stamp)

    async def serve(
        self, request: web.Request, build: Callable[[Store], RoomPage | None], *known: object
    ) -> web.Response:
        """Answer from the cache or by building the page; 304 when the client has it already.

        The cache key is the path and the `known` parameters, normalized: another parameter
        (`&n=<random>`) cannot make a request miss the cache.
        """
        key = request.path + "?" + urlencode([(str(n), v) for n, v in enumerate(known)])
        generation, changed = await self.stamp()
        with self.lock:
            found = (generation, key) in self.cache
            page = self.cache.get((generation, key))
            if found:
                self.cache.move_to_end((generation, key))
        if not found:
            wait = self.rate.admit(
                client_network(request, self.endpoint.settings.web_trusted_proxies)
            )
            if wait:
                return self.refuse(request, 429, wait)
            try:
                async with self.gate.slot():
                    generation, changed, page = await self.endpoint.database.page(
                        lambda store: self._build(store, key, build)
                    )
            except Full:
                return self.refuse(request, 503, RETRY_BUSY)
        if page is None:
            return self.not_found("There is no such page (yet): the address may be mistyped.")
        if page.status != 200:  # e.g. a search stopped at its deadline: not for any cache
            return web.Response(
                text=page.body, status=page.status, content_type=page.content_type,
                charset="utf-8", headers={"Cache-Control": "no-store"},
            )  # fmt: skip
        etag = '"' + hashlib.sha256(f"{generation} {key}".encode()).hexdigest()[:24] + '"'
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}"}
        if changed is not None:
            headers["Last-Modified"] = format_datetime(changed, usegmt=True)
        if _fresh(request, etag, changed):
            return web.Response(status=304, headers=headers)
        return web.Response(
            text=page.body, content_type=page.content_type, charset="utf-8", headers=headers
        )

    def _build(
        self, store: Store, key: str, build: Callable[[Store], RoomPage | None]
    ) -> tuple[str, datetime | None, RoomPage | None]:
        """Build a page (unless another request just did) and keep it under its generation."""
        generation, changed = store.generation(), store.last_change()
        cached = (generation, key)
        with self.lock:
            if cached in self.cache:
                self.cache.move_to_end(cached)
                return generation, changed, self.cache[cached]
        page = build(store)
        if page is None or page.status == 200:
            with self.lock:
                self.cache[cached] = page
                while len(self.cache) > CACHE_SIZE:
                    self.cache.popitem(last=False)
        return generation, changed, page

    def refuse(self, request: web.Request, status: int, wait: float) -> web.Response:
        """Answer a request the reading room will not take now: 429 or 503, with Retry-After."""
        heading, text = REFUSALS[status]
        log.debug(
            "web: %s %s answered %d (reading room limits)", request.method, request.path, status
        )
        response = self.endpoint.page(
            "error", status=status, code=status, heading=heading, text=text, home="/"
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response

    def not_found(self, what: str) -> web.Response:
        """Answer an unknown topic, day or page with a friendly page and a way back."""
        body = self.room.renderer.page(
            "web/not_found.html", links=self.links, what=what, slugs=self.room.slugs
        )
        return web.Response(text=body, status=404, content_type="text/html")

    async def index(self, request: web.Request) -> web.Response:
        """GET /: the topics with their counts, the latest days, the feeds."""
        return await self.serve(request, lambda store: self.room.index(store, self.links))

    async def topic(self, request: web.Request) -> web.Response:
        """GET /topics/{slug}?page=N: every paper of a topic, newest first."""
        page = _page(request)
        slug = request.match_info["slug"]
        return await self.serve(
            request, lambda store: self.room.topic(store, self.links, slug, page), page
        )

    async def day(self, request: web.Request) -> web.Response:
        """GET /days/{day}[/{topic+topic}]?page=N: a day's news (for a set of topics)."""
        page = _page(request)
        try:
            day = date.fromisoformat(request.match_info["day"])
        except ValueError:
            return self.not_found("Days are written like 2026-11-27.")
        topics = [t for t in request.match_info.get("topics", "").split("+") if t]
        return await self.serve(
            request, lambda store: self.room.day(store, self.links, day, topics, page), page
        )

    async def search(self, request: web.Request) -> web.Response:
        """GET /search?q=…&page=N: titles, abstracts and authors."""
        page = _page(request)
        text = " ".join(request.query.get("q", "").split())[:MAX_QUERY]
        return await self.serve(
            request, lambda store: self.room.search(store, self.links, text, page), text, page
        )

    async def feed(self, request: web.Request) -> web.Response:
        """GET /feeds/{slug}.atom or /feeds/all.atom: the newest announced papers."""
        name = request.match_info["name"]
        slug = None if name == "all" else name
        return await self.serve(request, lambda store: self.room.feed(store, self.links, slug))


def _page(request: web.Request) -> int:
    """Return the page number asked for; anything but a small positive number is page 0."""
    return whole_number(request.query.get("page", "1"), digits=5) or 0


def _fresh(request: web.Request, etag: str, changed: datetime | None) -> bool:
    """Tell whether the client's copy is current (If-None-Match, else If-Modified-Since)."""
    match = request.headers.get("If-None-Match")
    if match is not None:
        return etag in [tag.strip().removeprefix("W/") for tag in match.split(",")] or (
            match.strip() == "*"
        )
    since = request.headers.get("If-Modified-Since")
    if since and changed is not None:
        try:
            return changed.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
