"""Links by purpose: unsubscribe links only unsubscribe (forever), manage links can be revoked."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET, changed, make_paper

from digest.cli import main
from digest.pipeline import run_once
from digest.store import Store
from digest.tokens import form_token, make_token, read_link, token_id
from digest.web import ENDPOINT, make_app

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)
GNN = "Graph Neural Network"
ALAN = "alan@example.org"
CSV = f"email,name,keywords\n{ALAN},Alan Turing,{GNN}\n"
BASE = "https://papers.example.org"
INVALID = "This link is not valid"


def day(n: int) -> datetime:
    return DAY1 + timedelta(days=n)


def csrf() -> str:
    return form_token(SECRET.encode(), "manage", token_id(SECRET.encode(), ALAN))


def manage_link(message) -> str:
    """Return the path and query of the manage link in an email's text."""
    text = message.get_body(("plain",)).get_content()
    (url,) = set(re.findall(rf"{BASE}(/manage\?token=[\w.-]+)", text))
    return url


def unsubscribe_link(message) -> str:
    """Return the path and query of an email's List-Unsubscribe (RFC 8058) link."""
    return message["List-Unsubscribe"].strip("<>").removeprefix(BASE)


class Site:
    """Alan, mailed a first digest, and the web endpoint with a clock the test moves."""

    def __init__(self, settings, base: str, client: aiohttp.ClientSession, app, mail_server):
        self.settings, self.base, self.client, self.app = settings, base, client, app
        self.mail_server = mail_server
        self.digest = mail_server.received[0].message

    async def get(self, path: str) -> tuple[int, str]:
        async with self.client.get(self.base + path) as answer:
            return answer.status, await answer.text()

    async def post(self, path: str, data: dict | None = None) -> tuple[int, str]:
        async with self.client.post(self.base + path, data=data or {}) as answer:
            return answer.status, await answer.text()

    def status(self) -> str | None:
        with Store(self.settings.database) as store:
            reason = store.suppression(ALAN)
        return reason[0] if reason else None


async def serve(settings, mail_server):
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: day(0)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return app, server


@pytest.fixture(params=[False, True], ids=["own-mailer", "signup-mailer"])
async def site(request, make_settings, fake_arxiv, mail_server):
    """Alan after his first digest; the endpoint with (or without) the sign-up form."""
    extra = "\n[web]\nsignup = true\n" if request.param else ""
    settings = changed(make_settings(subscribers=CSV, extra=extra), first_run_days=10_000)
    await asyncio.to_thread(run_once, settings, clock=lambda: day(0))
    assert len(mail_server.received) == 1
    app, server = await serve(settings, mail_server)
    async with aiohttp.ClientSession() as client:
        yield Site(settings, str(server.make_url("")).rstrip("/"), client, app, mail_server)
    await server.close()


@pytest.mark.parametrize("site", [False], indirect=True)
async def test_an_unsubscribe_link_cannot_open_or_change_the_page(site):
    unsubscribe, manage = unsubscribe_link(site.digest), manage_link(site.digest)
    token = unsubscribe.partition("token=")[2]
    assert read_link(token).purpose == "unsubscribe"
    assert read_link(manage.partition("token=")[2]).purpose == "manage"
    as_manage = unsubscribe.replace("/unsubscribe?", "/manage?")
    for path in (as_manage, as_manage.replace(".u.", ".")):  # nor as an old-format token
        status, page = await site.get(path)
        assert status == 400 and INVALID in page
    for path in ("/manage", "/manage/delete", "/manage/signout"):
        status, page = await site.post(f"{path}?token={token}", {"csrf": csrf(), "topic": "x"})
        assert status == 400 and INVALID in page, path
    assert site.status() is None  # nothing deleted
    with Store(site.settings.database) as store:
        assert store.link_version(ALAN) == 0 and store.person(ALAN) is None
    status, page = await site.get(manage)  # the digest's manage link opens the page
    assert status == 200 and 'id="signout"' in page
    status, page = await site.get(unsubscribe)  # the unsubscribe link shows its button
    assert status == 200 and 'id="unsubscribe"' in page
    status, page = await site.post(unsubscribe, {"List-Unsubscribe": "One-Click"})
    assert status == 200 and 'id="resubscribe"' in page and site.status() == "unsubscribed"
    status, _ = await site.post(unsubscribe.replace("/unsubscribe?", "/resubscribe?"))
    assert status == 200 and site.status() is None  # and undoes a mistaken click
    status, page = await site.post(manage.replace("/manage?", "/unsubscribe?"))
    assert status == 200 and site.status() == "unsubscribed"  # the page's own button


async def test_sign_out_revokes_every_manage_link_and_mails_a_new_one(site, fake_arxiv):
    manage, unsubscribe = manage_link(site.digest), unsubscribe_link(site.digest)
    old_format = f"/manage?token={make_token(SECRET.encode(), ALAN)}"
    assert (await site.get(old_format))[0] == 200  # mailed before links had purposes: version 0
    status, page = await site.post(manage.replace("/manage?", "/manage/signout?"), {"csrf": ""})
    assert status == 403  # the page's own form only
    status, page = await site.post(manage.replace("/manage?", "/manage/signout?"), {"csrf": csrf()})
    assert status == 200 and "Your links are signed out" in page and 'id="mailed"' in page
    assert "A new link is on its way" in page
    for path in (manage, old_format, manage.replace("/manage?", "/manage/data?")):
        status, page = await site.get(path)
        assert status == 400 and INVALID in page, path
    status, page = await site.post(manage.replace("/manage?", "/manage/signout?"), {"csrf": csrf()})
    assert status == 400  # the revoked link cannot sign out (and mail) again
    received = await asyncio.to_thread(site.mail_server.wait_for, 2)
    mail = received[1].message
    assert received[1].rcpt_tos == [ALAN] and mail["To"] == f"Alan Turing <{ALAN}>"
    assert mail["Subject"] == "Your new link to your Daily Papers subscription"
    fresh = manage_link(mail)
    assert fresh != manage and read_link(fresh.partition("token=")[2]).version == 1
    status, page = await site.get(fresh)
    assert status == 200 and "a•••@example.org" in page
    # The unsubscribe links mailed before still unsubscribe, and only that.
    status, _ = await site.post(unsubscribe, {"List-Unsubscribe": "One-Click"})
    assert status == 200 and site.status() == "unsubscribed"
    status, _ = await site.post(manage.replace("/manage?", "/resubscribe?"))
    assert status == 400 and site.status() == "unsubscribed"  # a revoked link does nothing
    status, _ = await site.post(fresh.replace("/manage?", "/resubscribe?"))
    assert status == 200 and site.status() is None
    # The next digest carries a manage link of the new version.
    announced = day(1) - timedelta(hours=10)
    fake_arxiv.papers.append(make_paper("2511.60001", f"{GNN} news", announced))
    await asyncio.to_thread(run_once, site.settings, clock=lambda: day(1))
    (_, _, digest) = await asyncio.to_thread(site.mail_server.wait_for, 3)
    assert manage_link(digest.message) == fresh
    assert (await site.get(fresh))[0] == 200


@pytest.mark.parametrize("site", [False], indirect=True)
async def test_revoke_on_the_command_line(site):
    manage = manage_link(site.digest)
    old_format = f"/manage?token={make_token(SECRET.encode(), ALAN)}"
    result = CliRunner().invoke(
        main,
        ["-c", str(site.settings.path), "subscribers", "--revoke", ALAN],
        env={"DIGEST_SECRET": SECRET},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"{ALAN}: every link to their page mailed so far is signed out (version 1)" in (
        result.output
    )
    for path in (manage, old_format):
        status, page = await site.get(path)
        assert status == 400 and INVALID in page
    status, _ = await site.post(old_format.replace("/manage?", "/unsubscribe?"))
    assert status == 200 and site.status() == "unsubscribed"  # old links still unsubscribe


@pytest.mark.parametrize("site", [False], indirect=True)
async def test_delete_my_data_revokes_the_links(site):
    manage = manage_link(site.digest)
    delete = manage.replace("/manage?", "/manage/delete?")
    status, page = await site.post(delete, {"csrf": csrf()})
    assert status == 200 and "Your data is deleted" in page
    with Store(site.settings.database) as store:
        assert store.link_version(ALAN) == 1
        # Even were they mailed again (signed up anew), the links of before stay dead.
        store.remember_recipients([(token_id(SECRET.encode(), ALAN), ALAN)])
        store.unsuppress(ALAN)
    status, page = await site.get(manage)
    assert status == 400 and INVALID in page
    status, _ = await site.post(delete, {"csrf": csrf()})
    assert status == 400


@pytest.mark.parametrize("site", [False], indirect=True)
async def test_an_old_format_link_still_unsubscribes(site):
    old = make_token(SECRET.encode(), ALAN)  # as every digest carried before links had purposes
    assert read_link(old).purpose == "legacy"
    status, page = await site.get(f"/unsubscribe?token={old}")
    assert status == 200 and 'id="unsubscribe"' in page
    status, page = await site.post(f"/unsubscribe?token={old}", {"List-Unsubscribe": "One-Click"})
    assert status == 200 and "You are unsubscribed" in page and site.status() == "unsubscribed"


@pytest.mark.parametrize("site", [False], indirect=True)
async def test_an_unsubscribe_link_100_days_old_still_unsubscribes(site):
    site.app[ENDPOINT].clock = lambda: day(100)  # RFC 8058 clients may click late
    unsubscribe = unsubscribe_link(site.digest)
    status, page = await site.post(unsubscribe, {"List-Unsubscribe": "One-Click"})
    assert status == 200 and "You are unsubscribed" in page
    assert site.status() == "unsubscribed"


def test_a_complaint_s_copy_with_a_new_unsubscribe_link_is_traced():
    from digest.bouncemail import _UNSUBSCRIBE_RE
    from digest.tokens import unsubscribe_token

    for token in (unsubscribe_token(b"s" * 32, ALAN), make_token(b"s" * 32, ALAN)):
        assert _UNSUBSCRIBE_RE.findall(f"<{BASE}/unsubscribe?token={token}>") == [token]
