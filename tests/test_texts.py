"""Texts that follow the settings and the reader: the archive's introduction, when digests
come, the pause picker's dates, the unsubscribe page, the reading room's sign-up link, a
feed's <updated>."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import aiohttp
import feedparser
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import SECRET, changed, make_paper
from helpers.cycles import BASE, GNN, cycle
from helpers.site import LOCAL_PROXY, start

from digest.archive import render_archive
from digest.config import ConfigError, load_settings
from digest.links import Links
from digest.pipeline import write_archive
from digest.presentation import cadence, part_of_day
from digest.room import ReadingRoom
from digest.store import Store
from digest.tokens import form_token, manage_token, read_link
from digest.web import ENDPOINT, make_app

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)  # a Monday; 07:00 in Paris
READERS = (
    "email,name,keywords\nada@example.org,Ada Lovelace,Graph Neural Network\n"
    "wes@example.org,Wes Weekly,Graph Neural Network\n"
)


# --- the archive's introduction ------------------------------------------------------------------


def test_the_archive_intro_comes_from_the_settings(make_settings):
    path = make_settings().path
    base = path.read_text()
    intro = 'archive_intro = """Our papers, {rows} a topic.\n\nJoin [us](https://x.org)."""'
    path.write_text(base.replace("[digest]\n", f"[digest]\n{intro}\n"))
    settings = load_settings(path)
    with Store(settings.database) as store:
        write_archive(settings, store, DAY1)
    assert settings.archive.read_text().startswith(
        "# Daily Papers\nOur papers, 100 a topic.\n\nJoin [us](https://x.org).\n\n"
        "Last update: 2025-11-17\n\n"
    )
    path.write_text(base.replace("[digest]\n", '[digest]\narchive_intro = "  "\n'))
    with pytest.raises(ConfigError, match=r"\[digest\] archive_intro: must not be empty"):
        load_settings(path)


def test_without_archive_intro_the_archive_opens_as_before():
    text = render_archive("Daily Papers", DAY1.date(), 100, [])
    assert text == (
        "# Daily Papers\n"
        "The project automatically fetches the latest papers from arXiv based on keywords.\n\n"
        "The subheadings in the README file represent the search keywords.\n\n"
        "Only the most recent articles for each keyword are retained, up to a maximum of "
        "100 papers.\n\n"
        "You can click the 'Watch' button to receive daily email notifications.\n\n"
        "Last update: 2025-11-17\n\n"
    )


# --- when the digests come -----------------------------------------------------------------------


def test_cadence_follows_send_at_and_the_schedule():
    assert [part_of_day(time(h)) for h in (4, 5, 11, 12, 17, 18, 21, 22)] == [
        "night", "morning", "morning", "afternoon", "afternoon", "evening", "evening", "night",
    ]  # fmt: skip
    assert cadence(time(7), "UTC") == "every morning at 07:00 (UTC)"
    assert cadence(time(19, 30), "Europe/Paris", "weekly", 0) == (
        "every Monday evening at 19:30 (Europe/Paris)"
    )


@pytest.fixture
async def evening_signup(make_settings):
    """The endpoint of a list that sends at 18:30, with sign-up on."""
    settings = make_settings()
    settings = changed(
        settings, web_signup=True, web_trusted_proxies=LOCAL_PROXY, send_at=time(18, 30)
    )
    site, server = await start(settings)
    yield site
    await site.client.close()
    await server.close()


async def test_the_signup_page_and_its_email_say_when_digests_come(evening_signup, mail_server):
    site = evening_signup
    async with site.client.get(site.url + "/subscribe") as answer:
        page = await answer.text()
    assert "Every evening at 18:30 (Europe/Paris), one email" in page
    assert "morning" not in page
    status, _ = await site.sign_up("nora@example.org", [GNN])
    assert status == 200
    await site.signup.idle()
    (received,) = mail_server.received
    text = " ".join(received.message.get_body(("plain",)).get_content().split())
    assert "to Daily Papers: every evening at 18:30 (Europe/Paris), one email" in text
    html = received.message.get_body(("html",)).get_content()
    assert "every evening at 18:30 (Europe/Paris)" in html and "every morning" not in html


# --- a reader's pages: the pause picker, the unsubscribe page ------------------------------------


@pytest.fixture
async def readers(make_settings, fake_arxiv, mail_server):
    """Ada (daily) and Wes (weekly on Mondays) after a cycle that mailed both; the endpoint."""
    settings = changed(make_settings(subscribers=READERS), first_run_days=10_000)
    with Store(settings.database) as store:
        store.save_choices(
            "wes@example.org", "Wes Weekly", "csv", {"frequency": "weekly", "weekday": 0}, DAY1
        )
    await cycle(settings, DAY1)
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: DAY1
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield settings, str(server.make_url("")).rstrip("/"), client, mail_server
    await server.close()


async def get(client, url: str) -> tuple[int, str]:
    async with client.get(url) as answer:
        return answer.status, await answer.text()


async def test_the_pause_picker_offers_exactly_the_days_the_server_takes(readers):
    settings, base, client, _ = readers
    manage = f"{base}/manage?token={manage_token(SECRET.encode(), 'ada@example.org', 0)}"
    _, page = await get(client, manage)
    first = re.search(r'id="paused_until" name="paused_until" min="([^"]+)" max="([^"]+)"', page)
    assert first, page
    today = DAY1.astimezone(settings.timezone).date()
    assert first[1] == str(today + timedelta(days=1)) and first[2] == str(today + timedelta(365))
    csrf = form_token(SECRET.encode(), "manage", read_link(manage.split("=", 1)[1]).id)
    for day, ok in ((first[1], True), (str(today), False), (first[2], True),
                    (str(today + timedelta(366)), False)):  # fmt: skip
        data = {"csrf": csrf, "topic": "graph neural network", "paused_until": day}
        async with client.post(manage, data=data) as answer:
            assert (answer.status == 200) is ok, (day, await answer.text())


def body_unsubscribe_link(message, base: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"Unsubscribe \(a page opens to confirm\): (\S+)", text)[1].replace(BASE, base)


async def test_the_unsubscribe_page_names_the_schedule_and_links_to_manage(readers):
    settings, base, client, mail_server = readers
    mailed = mail_server.by_recipient()
    for email, digest in (
        ("ada@example.org", "the daily digest"),
        ("wes@example.org", "the weekly digest (on Mondays)"),
    ):
        (message,) = mailed[email]
        link = body_unsubscribe_link(message, base)
        header = message["List-Unsubscribe"].strip("<>").replace(BASE, base)
        assert link.startswith(header + "&manage=")  # the header's link has no manage token
        status, page = await get(client, link)
        assert status == 200 and f"You will no longer get {digest} at" in page
        manage = re.search(r'<a href="(manage\?token=[^"]+)" id="manage">', page)
        assert manage, page
        assert (await get(client, f"{base}/{manage[1]}"))[0] == 200  # it opens their page
        assert ("one a week" in page) is (email == "ada@example.org")  # Wes has it already
        status, page = await get(client, header)  # the link alone cannot open their page
        assert status == 200 and 'id="manage"' not in page
        assert "“Manage your subscription” at the foot of any digest" in page
    with Store(settings.database) as store:  # signed out: the page no longer offers it
        store.revoke_links("ada@example.org", DAY1)
    status, page = await get(client, body_unsubscribe_link(mailed["ada@example.org"][0], base))
    assert status == 200 and 'id="manage"' not in page and 'id="unsubscribe"' in page


# --- the reading room: a sign-up link, a feed's <updated> ----------------------------------------


@pytest.mark.parametrize("signup", [True, False])
async def test_the_reading_room_links_to_signup_when_it_is_on(make_settings, signup, tmp_path):
    settings = changed(make_settings(), web_signup=signup)
    app = make_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        status, page = await get(client, str(server.make_url("/")))
    await server.close()
    assert status == 200
    assert ('<a href="/subscribe" id="signup">' in page) is signup
    room = ReadingRoom(settings)
    with Store(settings.database) as store:
        static = room.index(store, Links(settings.base_url).static_site()).body
    assert (f'<a href="{BASE}/subscribe" id="signup">' in static) is signup


async def test_a_feed_entry_is_updated_the_day_the_list_announced_it(make_settings, fake_arxiv):
    settings = make_settings(smtp=False)
    announced = DAY1 + timedelta(days=2)
    evening = announced - timedelta(hours=30)  # updated the day before yesterday's evening
    fake_arxiv.papers.append(make_paper("2511.77001", f"{GNN} revisited", evening))
    await cycle(settings, announced)
    with Store(settings.database) as store:
        body = ReadingRoom(settings).feed(store, Links(settings.base_url).served(), None).body
    feed = feedparser.parse(body)
    entry = next(e for e in feed.entries if "2511.77001" in e.id)
    assert entry.updated == announced.isoformat()
    assert entry.published == evening.isoformat()  # arXiv's own date stays in <published>
    assert feed.feed.updated == max(e.updated for e in feed.entries)
