"""The web endpoint: one-click unsubscribe (GET confirms, POST acts), resubscribe, health."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .config import Settings
from .render import Renderer, make_environment
from .store import Store
from .tokens import TokenError, parse_token, verify_token

log = logging.getLogger(__name__)

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


def mask(email: str) -> str:
    """Show an address without giving it away: 'a•••@example.org'."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


class Endpoint:
    """Request handlers; every database call runs in a thread with its own connection."""

    def __init__(self, settings: Settings, status: Callable[[], dict[str, Any]] | None = None):
        self.settings = settings
        self.renderer = Renderer(make_environment(settings.templates), settings.name)
        self.status = status or self.stored_status
        self._secret: bytes | None = None

    def _store(self, work: Callable[[Store], Any]) -> Any:
        with Store(self.settings.database, timeout=10) as store:
            if self._secret is None:
                self._secret = store.secret(self.settings.secret)
            return work(store)

    async def db(self, work: Callable[[Store], Any]) -> Any:
        """Run work(store) in a thread, so a long cycle transaction never blocks the loop."""
        return await asyncio.to_thread(self._store, work)

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        """Return a rendered HTML page."""
        body = self.renderer.page(f"web/{name}.html", **context)
        return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)

    async def address(self, request: web.Request) -> str | None:
        """Return the address a request's token genuinely stands for, or None."""
        token = request.query.get("token")
        try:
            token_id = parse_token(token)
        except TokenError:
            return None
        email = await self.db(lambda store: store.recipient(token_id))
        try:
            return verify_token(self._secret or b"", token or "", email)
        except TokenError:
            return None

    def refused(self) -> web.Response:
        """Answer a bad link with a page that reveals nothing about anyone."""
        return self.page("invalid", status=400)

    async def confirm(self, request: web.Request) -> web.Response:
        """GET /unsubscribe: show a button; never unsubscribe (scanners open links)."""
        email = await self.address(request)
        if email is None:
            return self.refused()
        return self.page("confirm", masked=mask(email), token=request.query["token"])

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """POST /unsubscribe: the form button or RFC 8058 one-click; repeating is harmless."""
        await request.read()  # urlencoded or multipart "List-Unsubscribe=One-Click"
        email = await self.address(request)
        if email is None:
            return self.refused()
        now = datetime.now(UTC)
        if await self.db(lambda store: store.suppress(email, "unsubscribed", now)):
            log.info("unsubscribed %s", mask(email))
        return self.page("done", masked=mask(email), token=request.query["token"])

    async def resubscribe(self, request: web.Request) -> web.Response:
        """POST /resubscribe: undo an unsubscribe."""
        await request.read()
        email = await self.address(request)
        if email is None:
            return self.refused()
        if await self.db(lambda store: store.unsuppress(email)):
            log.info("resubscribed %s", mask(email))
        return self.page("resubscribed", masked=mask(email), token=request.query["token"])

    def stored_status(self) -> dict[str, Any]:
        """Return the health status from the database alone (for `digest serve`)."""
        last = self._store(lambda store: store.last_cycle())
        return {"status": "ok", "last_cycle": last, "next_cycle": None}

    async def health(self, request: web.Request) -> web.Response:
        """GET /healthz: one line of JSON."""
        status = await asyncio.to_thread(self.status)
        return web.Response(
            text=json.dumps(status, default=str) + "\n",
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )


def make_app(
    settings: Settings, status: Callable[[], dict[str, Any]] | None = None
) -> web.Application:
    """Build the aiohttp application."""
    endpoint = Endpoint(settings, status)
    app = web.Application(client_max_size=64 * 1024)
    app.add_routes(
        [
            web.get("/unsubscribe", endpoint.confirm),
            web.post("/unsubscribe", endpoint.unsubscribe),
            web.post("/resubscribe", endpoint.resubscribe),
            web.get("/healthz", endpoint.health),
        ]
    )
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; return the runner to clean up with."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("web: listening on http://%s:%d", host, port)
    return runner
