"""The reading room over HTTP: every paper reachable, feeds, search, caching, friendly 404s."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import timedelta
from urllib.parse import urljoin

import aiohttp
import feedparser
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import changed, make_paper
from helpers.cycles import ALAN, DAY1, GNN, cycle, recording
from helpers.fake_arxiv import busy_papers
from markupsafe import escape
from multidict import CIMultiDict

from digest.pipeline import run_once
from digest.web import make_app

DAY2 = DAY1 + timedelta(days=1)
IDS = re.compile(r'<h[23]><a href="https://arxiv.org/abs/([^"]+)v\d+"')


async def get(client, url: str, **headers) -> tuple[int, str, CIMultiDict]:
    async with client.get(url, headers=headers) as answer:
        return answer.status, await answer.text(), answer.headers.copy()


async def every_page(client, url: str) -> list[str]:
    """Fetch a page and the pages after it (rel="next"); return every page's HTML."""
    pages = []
    while url:
        status, body, _ = await get(client, url)
        assert status == 200, url
        pages.append(body)
        following = re.search(r'<a rel="next" href="([^"]+)"', body)
        url = urljoin(url, following[1].replace("&amp;", "&")) if following else ""
    return pages


async def test_180_new_papers_are_all_on_the_day_page_the_email_links_to(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings(subscribers=ALAN)
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        await cycle(settings, DAY1)
        busy = busy_papers(180, GNN, newest=DAY2 - timedelta(hours=1), spacing=timedelta(minutes=2))
        fake_arxiv.papers += busy
        mail_server.handler.received.clear()
        await cycle(settings, DAY2)
        (message,) = mail_server.by_recipient()["alan@example.org"]
        html = message.get_body(("html",)).get_content()
        assert len(html.encode()) <= 100_000 and "180 new papers" in html
        view = re.search(r'<a href="([^"]+)">View in your browser</a>', html)[1]
        assert view == "https://papers.example.org/days/2025-11-17/graph-neural-network"
        async with aiohttp.ClientSession() as client:
            pages = await every_page(client, view.replace("https://papers.example.org", base))
        shown = [i for page in pages for i in IDS.findall(page)]
        assert len(pages) == 2 and sorted(shown) == sorted(p.id for p in busy)
    finally:
        await server.close()


def two_days(settings, fake) -> None:
    """Record two days of cycles: every fixture paper, then one more GNN paper."""
    run_once(settings, clock=lambda: DAY1)
    fake.papers.append(
        make_paper(
            "2511.50001", "Graph Neural Network of the second day", DAY2 - timedelta(hours=3)
        )
    )
    run_once(settings, clock=lambda: DAY2)


@contextlib.asynccontextmanager
async def reading_room(settings):
    """Serve the reading room of settings: yield (settings, its URL, a client)."""
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield settings, str(server.make_url("")).rstrip("/"), client
    await server.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, fixture_papers):
    """Two days of cycles, recorded once for the tests that only read them."""
    with recording(tmp_path_factory.mktemp("room"), fixture_papers) as (settings, fake, _):
        settings = changed(settings, first_run_days=10_000)
        two_days(settings, fake)
    return settings


@pytest.fixture
async def room(recorded):
    """The reading room of the two recorded days: yield (settings, its URL, a client)."""
    async with reading_room(recorded) as served:
        yield served


@pytest.fixture
async def own_room(make_settings, fake_arxiv, mail_server):
    """A reading room of two days of its own, for a test that records more."""
    settings = changed(make_settings(), first_run_days=10_000)
    await asyncio.to_thread(two_days, settings, fake_arxiv)
    async with reading_room(settings) as served:
        yield served


async def test_the_index_lists_topics_days_and_feeds(room):
    _, base, client = room
    status, body, headers = await get(client, base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for name, slug in [
        (GNN, "graph-neural-network"),
        ("Large Language Model", "large-language-model"),
    ]:
        assert f'href="/topics/{slug}">{name}</a>' in body
        assert f'href="/feeds/{slug}.atom">feed</a>' in body
    assert 'href="/days/2025-11-17">17 November 2025</a> <span class="n">1 new</span>' in body
    assert 'href="/days/2025-11-16">16 November 2025</a>' in body
    assert "@example.org" not in body  # nothing personal on a public page
    for landmark in ("<header", "<nav", "<main", "<footer", "<h1>"):
        assert landmark in body


async def test_a_topic_page_lists_every_paper_newest_first_in_bounded_pages(room):
    _, base, client = room
    status, body, _ = await get(client, base + "/topics/graph-neural-network")
    ids = IDS.findall(body)
    assert status == 200 and ids[0] == "2511.50001" and len(ids) == 8
    assert "New submission" in body and "arXiv:2511.50001v1" in body
    for bad in ("?page=2", "?page=0", "?page=-1", "?page=x", "?page=99999999"):
        assert (await get(client, base + "/topics/graph-neural-network" + bad))[0] == 404


async def test_day_pages_hold_exactly_that_days_news(room):
    _, base, client = room
    status, body, _ = await get(client, base + "/days/2025-11-17")
    assert status == 200 and IDS.findall(body) == ["2511.50001"]
    status, body, _ = await get(client, base + "/days/2025-11-16/graph-neural-network")
    assert status == 200 and "2511.50001" not in body and len(IDS.findall(body)) == 7
    status, both, _ = await get(
        client, base + "/days/2025-11-16/graph-neural-network+large-language-model"
    )
    assert len(IDS.findall(both)) > len(IDS.findall(body))


@pytest.mark.parametrize(
    "path",
    [
        "/topics/no-such-topic",
        "/days/2020-01-01",
        "/days/2025-13-45",
        "/days/2025-11-16/no-such-topic",
        "/days/2025-11-16/graph-neural-network+graph-neural-network",
        "/feeds/no-such-topic.atom",
        "/no/such/page",
    ],
)
async def test_unknown_pages_get_a_friendly_404(room, path):
    _, base, client = room
    status, body, headers = await get(client, base + path)
    assert status == 404 and "<h1>" in body and 'href="/"' in body.replace("href='/'", 'href="/"')
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_a_conditional_get_is_answered_304_until_a_cycle_records_news(own_room, fake_arxiv):
    settings, base, client = own_room
    status, body, headers = await get(client, base + "/topics/graph-neural-network")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert headers["Cache-Control"] == "public, max-age=300"
    assert (await get(client, base + "/topics/graph-neural-network", **{"If-None-Match": etag}))[
        0
    ] == 304
    assert (
        await get(client, base + "/topics/graph-neural-network", **{"If-Modified-Since": modified})
    )[0] == 304
    fake_arxiv.papers.append(
        make_paper("2511.50002", "Graph Neural Network, day three", DAY2 + timedelta(hours=20))
    )
    await cycle(settings, DAY2 + timedelta(days=1))
    status, body, headers = await get(
        client, base + "/topics/graph-neural-network", **{"If-None-Match": etag}
    )
    assert status == 200 and headers["ETag"] != etag and "2511.50002" in body


async def test_feeds_parse_as_atom_with_the_right_entries(room):
    _, base, client = room
    status, body, headers = await get(client, base + "/feeds/graph-neural-network.atom")
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.version == "atom10"
    assert feed.feed.title == f"Daily Papers: {GNN}" and feed.feed.id and feed.feed.updated
    entries = feed.entries
    assert entries[0].id == "https://arxiv.org/abs/2511.50001" and len(entries) == 8
    for entry in entries:
        assert entry.link.startswith("https://arxiv.org/abs/") and entry.title and entry.updated
        assert entry.author and entry.summary
    everything = feedparser.parse((await get(client, base + "/feeds/all.atom"))[1])
    assert len(everything.entries) > len(entries)
    again = feedparser.parse((await get(client, base + "/feeds/graph-neural-network.atom"))[1])
    assert [(e.id, e.updated) for e in again.entries] == [(e.id, e.updated) for e in entries]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"graph neural network"', 1),  # a phrase
        ("Lovelace", 1),  # an author
        ("zyxwvut", 0),  # nothing
        ('graph" AND NOT( NEAR(x y) * ^ : - OR', 0),  # FTS5 syntax, taken as words
        ("", 0),
    ],
)
async def test_search_finds_phrases_and_authors_and_survives_any_query(room, query, expected):
    _, base, client = room
    async with client.get(base + "/search", params={"q": query}) as answer:
        body = await answer.text()
        assert answer.status == 200
    found = IDS.findall(body)
    assert (len(found) > 0) is (expected > 0), body[-2000:]
    assert f'value="{escape(query)}"' in body  # the query is shown back, as text


async def test_a_query_is_shown_back_escaped(room):
    _, base, client = room
    async with client.get(base + "/search", params={"q": "<script>alert(1)</script>"}) as answer:
        body = await answer.text()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_the_pages_can_be_turned_off(make_settings, fake_arxiv):
    settings = changed(make_settings(), web_pages=False)
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            base = str(server.make_url("")).rstrip("/")
            for path in ("/", "/topics/graph-neural-network", "/feeds/all.atom", "/search"):
                assert (await get(client, base + path))[0] == 404
            assert (await get(client, base + "/healthz"))[0] == 200
    finally:
        await server.close()
