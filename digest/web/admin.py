"""GET /admin: the operator's dashboard, its plots drawn here as SVG (no script, no CDN).

Behind DIGEST_ADMIN_PASSWORD (HTTP Basic, user `admin`) or a short-lived link printed by
`digest admin-link`; either only over HTTPS (a trusted proxy's X-Forwarded-Proto) or from
this machine (see access.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from markupsafe import Markup

from ..charts import Series, line_chart
from ..dashboard import Dashboard, duration, read_dashboard
from .access import OperatorAccess, Verdict
from .base import Endpoint

# Each line's colour (charts.COLOURS): mail sent blue, refused red, bounced amber; the
# statuses of the list as alike.
MAIL_SERIES = {"sent": 0, "failed": 1, "bounced": 3}
STATUS_COLOURS = {
    "active": 2, "paused": 3, "pending": 0, "unsubscribed": 5, "bounced": 1, "complaint": 6,
    "deleted": 4, "invalid": 7,
}  # fmt: skip


def _day(value: Any) -> str:
    return f"{value:%Y-%m-%d}"


def plots(board: Dashboard) -> dict[str, Any]:
    """Return the dashboard's plots as inline SVG, with what each shows."""
    first, last = _day(board.days[0]), _day(board.days[-1])
    topics = []
    for topic in board.topics:
        most = max(topic.per_day, default=0)
        label = (
            f"{topic.name}: new papers per day from {first} to {last}, {topic.total} in all, "
            f"at most {most} a day"
        )
        chart = line_chart(
            [Series(topic.name, topic.per_day, 0)], first, last, label, width=320, height=110
        )
        topics.append((topic, chart))
    cycles = board.cycles
    mails = fetch = None
    if cycles:
        start, end = _day(cycles[0].started), _day(cycles[-1].started)
        values = {name: [c.mails.get(name, 0) for c in cycles] for name in MAIL_SERIES}
        mails = line_chart(
            [Series(name, v, MAIL_SERIES[name]) for name, v in values.items()], start, end,
            f"Digests sent, bounced and refused in each of the {len(cycles)} cycles from "
            f"{start} to {end}: {sum(values['sent'])} sent, {sum(values['bounced'])} bounced, "
            f"{sum(values['failed'])} refused",
        )  # fmt: skip
        timed = [c for c in cycles if c.record.fetch_seconds is not None]
        if timed:
            seconds = [c.record.fetch_seconds or 0.0 for c in timed]
            fetch = line_chart(
                [Series("fetch", seconds, 4)], _day(timed[0].started), _day(timed[-1].started),
                f"Time each of the {len(timed)} cycles took to fetch from arXiv: at most "
                f"{duration(max(seconds))}, {duration(sum(seconds) / len(seconds))} on average",
                unit=" s",
            )  # fmt: skip
    census = None
    statuses = board.statuses
    if board.census:
        days = board.census
        series = [
            Series(s, [counts.get(s, 0) for _, counts in days], STATUS_COLOURS.get(s))
            for s in statuses
        ]
        now = days[-1][1]
        census = line_chart(
            series, _day(days[0][0]), _day(days[-1][0]),
            f"Subscribers by status on each of {len(days)} days from {_day(days[0][0])} to "
            f"{_day(days[-1][0])}; on the last: "
            + ", ".join(f"{now.get(s, 0)} {s}" for s in statuses),
        )  # fmt: skip
    return {
        "topics": topics,
        "mails": mails,
        "mail_series": MAIL_SERIES,
        "fetch": fetch,
        "census_chart": census,
        "statuses": [(s, STATUS_COLOURS.get(s, n)) for n, s in enumerate(statuses)],
    }


class Admin:
    """The operator's dashboard."""

    def __init__(self, endpoint: Endpoint, access: OperatorAccess):
        self.endpoint = endpoint
        self.access = access

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [web.get("/admin", self.dashboard)]

    async def dashboard(self, request: web.Request) -> web.Response:
        """GET /admin: the dashboard to the operator; 401, 403 or 429 to anyone else."""
        access = self.access
        if not access.secure(request):
            return access.refuse(
                403, "Use HTTPS",
                "The operator's view is served over HTTPS, or over plain HTTP to this machine "
                "only: the password and links must not cross the network in clear.",
            )  # fmt: skip
        if wait := access.blocked(request):
            return access.refuse(
                429, "Too many tries", "Too many wrong passwords or links: wait a minute.", wait
            )
        verdict = access.admin(request)
        if verdict is Verdict.EXPIRED:
            return access.refuse(
                403, "This link has expired",
                "Links to the operator's view last a few minutes: run digest admin-link "
                "for a new one.",
            )  # fmt: skip
        if verdict is Verdict.WRONG:
            access.failed(request, "a wrong admin password or link")
        if verdict is not Verdict.GOOD:
            return access.refuse(
                401, "Sign in",
                "Sign in as admin with DIGEST_ADMIN_PASSWORD, or open a link printed by "
                "digest admin-link.",
            )  # fmt: skip
        settings, now = self.endpoint.settings, self.endpoint.clock()
        board = await self.endpoint.read(lambda store: read_dashboard(settings, store, now))
        return self.endpoint.page(
            "admin", board=board, duration=duration, share=_share(board), **plots(board)
        )


def _share(board: Dashboard) -> Markup | str:
    share = board.refused_share
    return "none sent yet" if share is None else f"{100 * share:.1f} %"
