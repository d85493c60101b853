"""Every address digest writes comes from digest.links: pages, signed links, the static site."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from digest.links import Links
from digest.tokens import read_link, verify_confirm_token, verify_link

BASE = "https://papers.example.org"
SECRET = b"a test secret of at least thirty-two bytes"
DAY = date(2025, 11, 27)
NONCE = "a-sign-up-nonce-0123"


def test_an_email_links_to_pages_under_base_url():
    links = Links(BASE, SECRET)
    assert links.home() == f"{BASE}/"
    assert links.topic("gnn") == f"{BASE}/topics/gnn"
    assert links.topic("gnn", 3) == f"{BASE}/topics/gnn?page=3"
    assert links.day(DAY) == f"{BASE}/days/2025-11-27"
    assert links.day(DAY, ["gnn", "llm"]) == f"{BASE}/days/2025-11-27/gnn+llm"
    assert links.feed("gnn") == f"{BASE}/feeds/gnn.atom"
    assert links.feed_id() == f"{BASE}/feeds/all"


def test_the_live_pages_link_to_each_other_without_the_host():
    served = Links(BASE, SECRET).served()
    assert served.home() == "/"
    assert served.day(DAY, ["gnn", "llm"], 2) == "/days/2025-11-27/gnn+llm?page=2"
    assert served.feed() == "/feeds/all.atom"
    assert served.search() == "/search"
    assert served.search_page("graph & co", 2) == "/search?q=graph+%26+co&page=2"
    assert served.absolute().feed("gnn") == f"{BASE}/feeds/gnn.atom"
    assert served.feed_id("gnn") == f"{BASE}/feeds/gnn"  # a feed's id is its address, always


def test_the_static_site_links_relatively_and_spells_plus_as_2b():
    files = Links(BASE, SECRET).static_site()
    assert files.home() == "index.html"
    assert files.topic("gnn", 2) == "topics/gnn/page-2.html"
    assert files.day(DAY, ["gnn", "llm"]) == "days/2025-11-27/gnn%2Bllm/index.html"
    assert files.feed("gnn") == "feeds/gnn.atom"
    assert files.search() is None  # no search without a server
    seen = files.seen_from("days/2025-11-27/gnn%2Bllm/index.html")
    assert seen.home() == "../../../index.html"
    assert seen.topic("gnn") == "../../../topics/gnn/index.html"
    assert seen.feed() == "../../../feeds/all.atom"
    assert files.static_site().secret is None  # the static site carries no signed link


def test_signed_links_carry_tokens_that_verify():
    links = Links(BASE, SECRET)
    unsubscribe, manage = links.unsubscribe("ada@example.org"), links.manage("ada@example.org", 3)
    assert unsubscribe.startswith(f"{BASE}/unsubscribe?token=")
    assert manage.startswith(f"{BASE}/manage?token=")
    token, managing = unsubscribe.partition("token=")[2], manage.partition("token=")[2]
    assert token != managing  # a token per purpose: the unsubscribe link cannot manage
    assert read_link(token).purpose == "unsubscribe"
    assert (read_link(managing).purpose, read_link(managing).version) == ("manage", 3)
    for link in (token, managing):
        assert verify_link(SECRET, read_link(link), "ada@example.org") == "ada@example.org"
    now = datetime(2025, 11, 27, 6, 0, tzinfo=UTC)
    confirm = links.confirm("a-sign-up-nonce-0123", now + timedelta(hours=48))
    assert confirm.startswith(f"{BASE}/confirm?token=")
    assert (
        verify_confirm_token(SECRET, confirm.partition("token=")[2], now) == "a-sign-up-nonce-0123"
    )


def test_a_signed_link_without_the_secret_says_how_to_build_one():
    with pytest.raises(ValueError, match=r"need the secret: build Links\(base_url, secret\)"):
        Links(BASE).unsubscribe("ada@example.org")
