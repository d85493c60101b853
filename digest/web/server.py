"""The HTTP server: deadlines for slow clients, a connection cap, logs that cannot flood."""

from __future__ import annotations

import asyncio
import itertools
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)

# asyncio accepts up to this many connections at a time, before the cap can close any: half the
# open files go to connections, the rest to these, the database, SMTP and the logs.
BACKLOG = 128


@dataclass(frozen=True)
class Limits:
    """How long and how much a client may take: the endpoint's defence against slow clients."""

    header_timeout: float = 10.0  # from connecting, or the last answer, to a whole request head
    body_timeout: float = 10.0  # to read a request body (64 KB at most), or drain one refused
    max_requests: int = 100  # answers on one connection, then it is closed
    max_connections: int = 500  # open at once; beyond it the oldest idle ones are closed


# Where a flood of alike lines comes from: asyncio's accept() errors (EMFILE), aiohttp, us.
# `digest` itself filters every logger's lines at its one handler (digest.logs); these loggers
# are filtered at the source too, for a site started without it (tests, an embedding program).
QUIETED = ("asyncio", "aiohttp.server", "aiohttp.web", __name__)


class Connection(web.RequestHandler):
    """One client connection: a deadline for each request head, and friendly refusals."""

    def __init__(self, guard: Guard):
        super().__init__(
            guard.server,
            loop=guard.loop,
            keepalive_timeout=guard.limits.header_timeout,
            lingering_time=guard.limits.body_timeout,  # to drain a body answered early (413)
            access_log=None,  # type: ignore[arg-type]  # aiohttp says Logger; None turns it off
            logger=log,
        )
        self.guard = guard
        self.busy = False  # a request head arrived and is being answered
        self.answered = 0
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the deadline for the first request, and keep under the cap."""
        super().connection_made(transport)
        self.wait()
        self.guard.admit(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Forget the connection."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.guard.release(self)
        super().connection_lost(exc)

    def wait(self) -> None:
        """Give the client header_timeout seconds to send its next whole request head."""
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.guard.loop.call_later(self.guard.limits.header_timeout, self.expire)

    def expire(self) -> None:
        """Close the connection if it is still waiting for a request head."""
        self.deadline = None
        if not self.busy:
            log.debug("web: closing a connection that sent no whole request in time")
            self.force_close()

    def started(self) -> None:
        """Note that a request head arrived: the deadline for it is met."""
        self.busy = True
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def finished(self, response: web.StreamResponse | None) -> None:
        """Note an answer; close after max_requests, else wait for the next request."""
        self.busy = False
        self.answered += 1
        if response is not None and self.answered >= self.guard.limits.max_requests:
            response.force_close()
        self.wait()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer what aiohttp itself refuses (a malformed or oversized head) with a page."""
        if status >= 500:
            log.error("web: cannot answer a request from %s", request.remote, exc_info=exc)
        else:  # common on the internet (scanners, a mangled link): no traceback, no contents
            reason = type(exc).__name__ if exc else status
            log.debug("web: refused a malformed request from %s (%s)", request.remote, reason)
        if request.writer.output_size > 0:
            raise ConnectionError("part of the answer was sent already; closing")
        response = self.guard.pages(status)
        response.force_close()
        return response


class Guard:
    """Make the site's connections, and keep their number under a cap."""

    def __init__(
        self,
        server: web.Server,
        limits: Limits,
        cap: int,
        pages: Callable[[int], web.Response],
    ):
        self.server, self.limits, self.cap, self.pages = server, limits, cap, pages
        self.loop = asyncio.get_running_loop()
        self.open: dict[Connection, None] = {}  # oldest first

    def __call__(self) -> Connection:
        """Make the protocol of a new connection (asyncio's protocol factory)."""
        return Connection(self)

    def admit(self, connection: Connection) -> None:
        """Count a new connection; over the cap, close the oldest, idle ones first."""
        self.open[connection] = None
        excess = len(self.open) - self.cap
        if excess <= 0:
            return
        log.warning(
            "web: more than %d connections open; closing the oldest idle ones "
            "(many slow or idle clients: a scanner or an attack?)",
            self.cap,
        )
        others = [c for c in self.open if c is not connection]
        idle = (c for c in others if not c.busy)
        busy = (c for c in others if c.busy)
        for victim in list(itertools.islice(itertools.chain(idle, busy), excess)):
            self.release(victim)
            victim.force_close()

    def release(self, connection: Connection) -> None:
        """Forget a connection."""
        self.open.pop(connection, None)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections come from a Guard."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: Guard):
        super().__init__(runner)
        self.host, self.port, self.guard = host, port, guard

    @property
    def name(self) -> str:
        """Return the site's URL."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen."""
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.guard, self.host, self.port, backlog=BACKLOG)


def raise_open_files(ceiling: int = 65536) -> int:
    """Raise the soft limit on open files toward the hard one; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return ceiling
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning(
            "web: cannot raise the open files limit from %d to %d (%s); set LimitNOFILE= "
            "in the systemd unit",
            soft,
            target,
            exc,
        )
        return soft
    return target
