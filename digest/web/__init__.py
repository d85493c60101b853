"""The web endpoint: one aiohttp application, one module per kind of page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..config import Settings
from ..logs import REPEATS, Repeats
from .access import OperatorAccess
from .admin import Admin
from .base import HEADERS, Endpoint, plain_error
from .feedback import Feedback
from .metrics import Metrics
from .mine import OwnPages
from .preferences import Preferences
from .room_routes import RoomRoutes
from .server import QUIETED, Guard, GuardedSite, Limits, raise_open_files
from .signout import SignOut
from .signup import Signup
from .unsubscribe import Unsubscribing

__all__ = ["ENDPOINT", "HEADERS", "REPEATS", "ROOM", "Limits", "Repeats", "make_app", "start_site"]

log = logging.getLogger(__name__)

ENDPOINT = web.AppKey("endpoint", Endpoint)
ROOM = web.AppKey("room", RoomRoutes)  # the reading room's routes, their cache and limits


def make_app(
    settings: Settings,
    status: Callable[[dict[str, Any] | None], dict[str, Any]] | None = None,
    limits: Limits | None = None,
) -> web.Application:
    """Build the aiohttp application; start_site applies its limits to each connection."""
    endpoint = Endpoint(settings, status, limits)
    access = OperatorAccess(endpoint)  # /metrics and /admin: the operator's pages
    metrics = Metrics(endpoint, access)  # counts every request, outside the friendly errors
    app = web.Application(client_max_size=64 * 1024, middlewares=[metrics.count, endpoint.protect])
    app[ENDPOINT] = endpoint
    app.on_startup.append(lambda app: endpoint.start())  # before anything else uses it
    unsubscribing = Unsubscribing(endpoint)
    preferences = Preferences(endpoint, unsubscribing)
    app.add_routes(
        [
            *unsubscribing.routes(),
            *preferences.routes(),
            *Feedback(endpoint, preferences).routes(),  # 👍 / 👎 by vote links (issue 19)
            *OwnPages(endpoint, unsubscribing).routes(),
            web.get("/healthz", endpoint.health),
            *metrics.routes(),
            *Admin(endpoint, access).routes(),
        ]
    )
    if settings.web_pages:
        app[ROOM] = RoomRoutes(endpoint)
        app.add_routes(app[ROOM].routes())
    signup = Signup(endpoint) if settings.web_signup else None
    if signup is not None:
        signup.install(app)
    SignOut(preferences, signup.mailer if signup else None).install(app)  # one mailer for both

    async def resume(app: web.Application) -> None:  # requests kept before a restart
        endpoint.apply_soon()

    app.on_startup.append(resume)
    app.on_cleanup.append(lambda app: endpoint.stop())  # after the others: they use it
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening, with make_app's limits on every connection; return the runner."""
    for name in QUIETED:
        logging.getLogger(name).addFilter(REPEATS)
    endpoint = app.get(ENDPOINT)
    limits = endpoint.limits if endpoint else Limits()
    files = raise_open_files()
    cap = max(1, min(limits.max_connections, files // 2))  # half the files for the rest
    if cap < limits.max_connections:
        log.warning(
            "web: the open files limit (%d) allows %d connections at once, not %d; "
            "raise it (LimitNOFILE= in the systemd unit)",
            files,
            cap,
            limits.max_connections,
        )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    pages = endpoint.error_page if endpoint else plain_error
    site = GuardedSite(runner, host, port, Guard(runner.server, limits, cap, pages))
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info(
        "web: listening on http://%s:%d (at most %d connections; open files limit %d)",
        host,
        bound,
        cap,
        files,
    )
    return runner
