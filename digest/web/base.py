"""What every page of the endpoint shares: the database, templates, headers, error pages."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from ..config import Settings
from ..render import Renderer, make_environment
from ..store import Store, StoreBusy
from ..store.journal import Journal
from .database import StorePool
from .server import Connection, Limits
from .signed import Link, SignedLinks, mask

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
    503: (
        "Busy for a moment",
        "Nothing has changed yet: the list is busy sending. Please try again in a minute.",
    ),
    500: ("Something went wrong", "Your request could not be completed; please try again later."),
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITE_WAIT = 2.0  # seconds a write waits for the database: then the journal keeps it, or 503
START_WAIT = 30.0  # seconds the start waits to keep a new secret (only when none is kept yet)
RETRY_EVERY = 5.0  # seconds between tries to apply the journal
RETRY_AFTER = "60"  # seconds a busy answer (503) asks the client to wait
T = TypeVar("T")


class Endpoint:
    """What every page shares: settings, templates, the database, the secret, error pages."""

    def __init__(
        self,
        settings: Settings,
        status: Callable[[dict[str, Any] | None], dict[str, Any]] | None = None,
        limits: Limits | None = None,
    ):
        self.settings = settings
        self.limits = limits or Limits()
        self.renderer = Renderer(make_environment(settings.templates), settings.name)
        self.status = status
        pages = settings.web_room.concurrency if settings.web_pages else 0  # one per page at once
        self.database = StorePool(settings.database, pages=pages)
        self._secret: bytes | None = None
        self.signed = SignedLinks(settings, lambda: self.secret)
        self.journal = Journal(settings.database)
        self.write_wait = WRITE_WAIT
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests set their own
        self.retry_every = RETRY_EVERY
        self._applier: asyncio.Task[None] | None = None
        # Its own threads for files (the journal) and opening the database: never the loop's
        # default executor, which a `digest run` cycle and any library may keep busy.
        self.own_threads = ThreadPoolExecutor(2, thread_name_prefix="web-aside")

    @property
    def secret(self) -> bytes:
        """Return the signing secret, loaded when the app started."""
        if self._secret is None:
            raise RuntimeError("the web endpoint has not started: its secret is not loaded")
        return self._secret

    async def start(self) -> None:
        """Open the database's connections (checking its schema once) and load the secret."""
        try:
            await self.aside(self.database.open)
        except BaseException:  # no app to stop: end the threads here
            self.own_threads.shutdown()
            raise
        configured = self.settings.secret  # else the one the database keeps (made if none)
        self._secret = await self.database.write(lambda s: s.secret(configured), START_WAIT)

    async def stop(self) -> None:
        """Stop applying the journal and close the database's connections."""
        if self._applier is not None:
            self._applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._applier
        await self.aside(self.database.close)
        self.own_threads.shutdown()  # idle by now: their threads end at once

    async def aside(self, work: Callable[..., T], *args: Any) -> T:
        """Run work(*args) on the endpoint's own threads (not the database's)."""
        return await asyncio.get_running_loop().run_in_executor(self.own_threads, work, *args)

    async def read(self, work: Callable[[Store], T]) -> T:
        """Run work(store) on a read connection, in a thread: the loop never waits for SQLite."""
        return await self.database.read(work)

    async def write(self, work: Callable[[Store], T], wait: float | None = None) -> T:
        """Run work(store), its reads and writes together, on the one writer; StoreBusy if
        another process holds the write lock longer than `wait` (write_wait) seconds."""
        return await self.database.write(work, self.write_wait if wait is None else wait)

    async def record(self, action: str, link: Link) -> tuple[str | None, bool]:
        """Unsubscribe or resubscribe the address of a signed link, in one database call;
        return the address (None: not a genuine link) and whether it waits in the journal.

        A database held by another writer for longer than write_wait does not lose the
        request: it is kept (fsynced) in the journal beside the database, honoured by the
        send phase at once, and applied as soon as the database is free.
        """
        now = self.clock()

        def write(store: Store) -> tuple[str | None, bool | None]:
            email = self.signed.address(store, link)
            if email is None:
                return None, None
            try:
                if action == "unsubscribed":
                    return email, store.suppress(email, "unsubscribed", now)
                return email, store.unsuppress(email)
            except StoreBusy:
                return email, None  # kept in the journal below

        email, changed = await self.write(write)
        if email is None:
            return None, False
        if changed is not None:
            if changed:
                log.info("%s %s", action, mask(email))
            return email, False
        await self.aside(self.journal.append, action, email, now)
        log.warning(
            "web: the database is busy; %s %s kept in %s until it is free",
            action,
            mask(email),
            self.journal.path.name,
        )
        self.apply_soon()
        return email, True

    def apply_soon(self) -> None:
        """Apply the journal in the background, every retry_every seconds until it is empty."""
        if self._applier is None or self._applier.done():
            self._applier = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        while await self.aside(self.journal.pending):
            await asyncio.sleep(self.retry_every)
            try:
                applied = await self.write(lambda store: store.apply_journal())
            except StoreBusy:
                continue
            if applied:
                log.info("web: applied %d request(s) kept while the database was busy", applied)

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        """Return a rendered HTML page."""
        body = self.renderer.page(f"web/{name}.html", **context)
        return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)

    async def stored_status(self) -> dict[str, Any]:
        """Return the health status from the database alone (for `digest serve`)."""
        last = await self.read(lambda store: store.last_cycle())
        return {"status": "ok", "last_cycle": last, "next_cycle": None}

    async def health(self, request: web.Request) -> web.Response:
        """GET /healthz: one line of JSON; the details only locally or if health_details is set."""
        if self.status is None:
            status = await self.stored_status()
        else:  # read on the signed links' connections: never behind public pages or a cycle
            status = self.status(await self.read(lambda store: store.last_cycle()))
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
            response = self.page(
                "error", status=status, code=status, heading=heading, text=text, home=home
            )
        except Exception:  # an operator's broken template must not hide the error itself
            log.exception("web: cannot render templates/web/error.html; answering plain text")
            response = plain_error(status)
        if status == 503:
            response.headers["Retry-After"] = RETRY_AFTER
        return response

    def busy(self, request: web.Request) -> web.Response:
        """Answer a write the database could not take in time: 503, try again in a minute."""
        log.warning(
            "web: the database is held by another process (a cycle?); answered %s %s with 503",
            request.method,
            request.path,  # the path only: the query holds the reader's token
        )
        return self.error_page(503)

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
                        await read_body(request)  # kept: the handler's own read() returns it
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
        except StoreBusy:  # a cycle holds the write lock: nothing changed, try again soon
            response = self.busy(request)
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


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data", "")  # what post() parses
# Their handlers read no field: an RFC 8058 one-click body unsubscribes however it is written.
RAW_BODIES = ("/unsubscribe", "/resubscribe")


async def read_body(request: web.Request) -> None:
    """Read the body, and parse a posted form (a multipart one is read from the stream): the
    handler gets aiohttp's kept copy. A form that cannot be parsed (no or another boundary,
    bytes that are not its charset, an unknown charset) or that sends a file (no form of
    ours takes one: each field is text) is the client's error: a 400."""
    if request.method != "POST" or request.content_type not in FORMS or request.path in RAW_BODIES:
        await request.read()
        return
    try:
        form = await request.post()
    except (ValueError, LookupError, Warning) as exc:  # Warning: under -W error
        log.debug("web: refused a form that cannot be parsed (%s: %s)", type(exc).__name__, exc)
        raise web.HTTPBadRequest() from None
    if any(not isinstance(value, str) for value in form.values()):
        log.debug("web: refused a form that sends a file")
        raise web.HTTPBadRequest()
    await request.read()  # what follows a multipart form's last part, within the body's time
