"""What every page of the endpoint shares: the database, templates, headers, error pages."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..config import Settings
from ..render import Renderer, make_environment
from ..store import Store, StoreBusy
from ..store.journal import Journal
from .server import Connection, Limits

log = logging.getLogger(__name__)

HEADERS = {
    "Cache-Control": "no-store",
    # Links carry tokens: never a referrer to another site. (Not "no-referrer": browsers then
    # send "Origin: null" with the site's own forms, and the forms check their Origin.)
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
# A request carrying one of these came through a proxy, whatever address it comes from.
FORWARDING = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
# The friendly error pages: status -> (heading, text); other statuses use 400's or 500's.
ERRORS = {
    400: ("This request could not be understood", "The link may be incomplete or altered."),
    403: ("This form cannot be sent from here", "Please use the page itself, and try again."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not available this way", "This address does not accept this kind of request."),
    408: ("Request timed out", "The request took too long to arrive; please try again."),
    413: ("Request too large", "The request was larger than this page accepts."),
    500: ("Something went wrong", "Your request could not be completed; please try again later."),
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITE_WAIT = 2.0  # seconds a write waits for the database before the journal keeps it
RETRY_EVERY = 5.0  # seconds between tries to apply the journal


def mask(email: str) -> str:
    """Show an address without giving it away: 'a•••@example.org'."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


class Endpoint:
    """What every page shares: settings, templates, the database in a thread, error pages."""

    def __init__(
        self,
        settings: Settings,
        status: Callable[[], dict[str, Any]] | None = None,
        limits: Limits | None = None,
    ):
        self.settings = settings
        self.limits = limits or Limits()
        self.renderer = Renderer(make_environment(settings.templates), settings.name)
        self.status = status or self.stored_status
        self.secret: bytes | None = None
        self.journal = Journal(settings.database)
        self.write_wait = WRITE_WAIT
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests set their own
        self.retry_every = RETRY_EVERY
        self._applier: asyncio.Task[None] | None = None

    def _store(self, work: Callable[[Store], Any], timeout: float = 10.0) -> Any:
        with Store(self.settings.database, timeout=timeout) as store:
            if self.secret is None:
                self.secret = store.secret(self.settings.secret)
            return work(store)

    async def db(self, work: Callable[[Store], Any], timeout: float = 10.0) -> Any:
        """Run work(store) in a thread, so a long cycle transaction never blocks the loop."""
        return await asyncio.to_thread(self._store, work, timeout)

    async def record(self, action: str, email: str) -> bool:
        """Unsubscribe or resubscribe an address; return True if it had to wait in the journal.

        A database held by another writer for longer than write_wait does not lose the
        request: it is kept (fsynced) in the journal beside the database, honoured by the
        send phase at once, and applied as soon as the database is free.
        """
        now = self.clock()

        def write(store: Store) -> bool:
            if action == "unsubscribed":
                return store.suppress(email, "unsubscribed", now)
            return store.unsuppress(email)

        try:
            if await self.db(write, timeout=self.write_wait):
                log.info("%s %s", action, mask(email))
            return False
        except StoreBusy:
            await asyncio.to_thread(self.journal.append, action, email, now)
            log.warning(
                "web: the database is busy; %s %s kept in %s until it is free",
                action,
                mask(email),
                self.journal.path.name,
            )
            self.apply_soon()
            return True

    def apply_soon(self) -> None:
        """Apply the journal in the background, every retry_every seconds until it is empty."""
        if self._applier is None or self._applier.done():
            self._applier = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        while await asyncio.to_thread(self.journal.pending):
            await asyncio.sleep(self.retry_every)
            try:
                applied = await self.db(lambda store: store.apply_journal(), self.write_wait)
            except StoreBusy:
                continue
            if applied:
                log.info("web: applied %d request(s) kept while the database was busy", applied)

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        """Return a rendered HTML page."""
        body = self.renderer.page(f"web/{name}.html", **context)
        return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)

    def stored_status(self) -> dict[str, Any]:
        """Return the health status from the database alone (for `digest serve`)."""
        last = self._store(lambda store: store.last_cycle())
        return {"status": "ok", "last_cycle": last, "next_cycle": None}

    async def health(self, request: web.Request) -> web.Response:
        """GET /healthz: one line of JSON; the details only locally or if health_details is set."""
        status = await asyncio.to_thread(self.status)
        if not (self.settings.web_health_details or is_local(request)):
            status = {"status": status.get("status", "ok")}
        return web.Response(
            text=json.dumps(status, default=str) + "\n",
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    def error_page(self, status: int) -> web.Response:
        """Return the friendly page for an HTTP error status."""
        heading, text = ERRORS.get(status) or ERRORS[500 if status >= 500 else 400]
        try:
            home = "/" if self.settings.web_pages else None
            return self.page(
                "error", status=status, code=status, heading=heading, text=text, home=home
            )
        except Exception:  # an operator's broken template must not hide the error itself
            log.exception("web: cannot render templates/web/error.html; answering plain text")
            return plain_error(status)

    @web.middleware
    async def protect(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time the request on a guarded connection; answer it with the security headers."""
        connection = request.protocol
        if not isinstance(connection, Connection):  # e.g. a test server's own connection
            return await self.answer(request, handler)
        connection.started()
        response = None
        try:
            response = await self.answer(request, handler)
            return response
        finally:
            connection.finished(response)

    async def answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read the body in time, call the handler, turn every error into a friendly page."""
        try:
            if request.body_exists:
                try:
                    async with asyncio.timeout(self.limits.body_timeout):
                        await request.read()  # kept: the handler's own read() returns it
                except TimeoutError:
                    raise web.HTTPRequestTimeout() from None
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect or the like: as it is, with the headers
                exc.headers.update({k: v for k, v in HEADERS.items() if k not in exc.headers})
                raise
            response = self.error_page(exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            if exc.status in (408, 413):  # the client may still be sending: stop listening
                response.force_close()
        except ConnectionError:  # the client left mid-request: no one to answer, nothing to fix
            log.debug("web: the client of %s %s left early", request.method, request.path)
            response = self.error_page(400)
        except Exception:
            # The path only: the query holds the reader's token.
            log.exception("web: %s %s failed; answered 500", request.method, request.path)
            response = self.error_page(500)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def same_origin(request: web.BaseRequest, base_url: str) -> bool:
    """Tell whether a form's POST comes from the site itself (by its Origin, when sent).

    Without an Origin (not a browser's form) the form token alone guards the POST.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc in {urlsplit(base_url).netloc, request.host}


def is_local(request: web.BaseRequest) -> bool:
    """Tell whether a request comes from this machine itself, not through a proxy."""
    if any(name in request.headers for name in FORWARDING):
        return False
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def plain_error(status: int) -> web.Response:
    """Return a short plain-text error answer (for an application without an Endpoint)."""
    heading, _ = ERRORS.get(status) or ERRORS[500 if status >= 500 else 400]
    return web.Response(text=f"{heading}\n", status=status, headers=HEADERS)
