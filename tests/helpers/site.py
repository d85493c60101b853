"""The web app with sign-up on, served on 127.0.0.1 with a clock the test moves by hand."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_network

import aiohttp
from aiohttp.test_utils import TestServer

from digest.config import Settings
from digest.web import ENDPOINT, make_app
from digest.web.signup import SIGNUP, Signup
from helpers.cycles import BASE, DAY1, GNN

SENT = "Check your inbox"  # the page after a sign-up
LOCAL_PROXY = (ip_network("127.0.0.1/32"),)  # the tests' X-Forwarded-For names the client


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    """A running app with sign-up on, its client, and its clock."""

    settings: Settings
    url: str
    client: aiohttp.ClientSession
    signup: Signup
    clock: Clock
    last: Mapping[str, str] = field(default_factory=dict)  # the headers of the last answer

    async def form(self) -> dict[str, str]:
        """GET /subscribe; return its hidden fields."""
        async with self.client.get(self.url + "/subscribe") as answer:
            assert answer.status == 200
            page = await answer.text()
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))

    async def sign_up(
        self,
        email: str,
        topics: Sequence[str] = (GNN,),
        *,
        name: str = "",
        client: str = "203.0.113.7",
        wait: float = 5,
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> tuple[int, str]:
        """Fill in the form like a person (wait seconds later); return the status and page."""
        hidden = await self.form()
        self.clock.advance(seconds=wait)
        data = [("email", email), ("name", name), ("website", ""), *hidden.items()]
        data += [("topic", t.casefold()) for t in topics]
        data = [(k, v) for k, v in data if k not in fields] + list(fields.items())
        headers = {"X-Forwarded-For": f"192.0.2.1, {client}", **(headers or {})}
        async with self.client.post(self.url + "/subscribe", data=data, headers=headers) as a:
            self.last = a.headers
            return a.status, await a.text()

    def local(self, link: str) -> str:
        """Return a mailed link pointed at the test server."""
        return link.replace(BASE, self.url)


async def start(settings: Settings):
    """Serve settings' app with a hand-moved clock; return (site, server)."""
    app = make_app(settings)
    signup, clock = app[SIGNUP], Clock(DAY1 - timedelta(hours=12))
    app[ENDPOINT].clock = clock
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = aiohttp.ClientSession()
    url = str(server.make_url("")).rstrip("/")
    return Site(settings, url, client, signup, clock), server


def confirm_link(message) -> str:
    """Return the confirmation link of a mailed message's text part."""
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"{re.escape(BASE)}/confirm\?token=\S+", text)[0]


async def confirm_form(site: Site, link: str) -> str:
    """GET a confirmation link; return the form token of its button."""
    async with site.client.get(link) as answer:
        page = await answer.text()
    assert answer.status == 200 and 'method="post"' in page, page
    return re.search(r'name="form" value="([^"]+)"', page)[1]
