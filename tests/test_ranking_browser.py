"""A ranked digest as people see it in chromium, and the reader's page it links to: the reason
lines and the highlighted words readable (4.5:1), the 👍 / 👎 buttons 24 px at least, nothing
scrolling sideways; on a phone and a desktop, light and dark. One browser for the module."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from helpers.browser import check, chromium, measure, serving, show
from helpers.builders import ARTIFACTS, SECRET, changed
from helpers.cycles import BASE, DAY1, GNN, recording
from helpers.mailserver import free_port
from helpers.ranked import ADA, DAY2, DISLIKED, FIRST, LIKED, LIKED_TOO, READERS, SECOND, parts

from digest.config import load_settings
from digest.pipeline import run_once
from digest.store import Store

pytestmark = pytest.mark.slow  # a real browser and `digest serve`: seconds to start
VIEWS = [(width, scheme) for width in (375, 1024) for scheme in ("light", "dark")]


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    """Ada's second digest (her votes lift a paper, max_per_topic = 3) as a file, and the link
    of its "N more" to her page, served by `digest serve`."""
    folder = tmp_path_factory.mktemp("ranked-browser")
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    extra = f'\n[web]\nlisten = "127.0.0.1:{port}"\n'
    with recording(folder, FIRST, READERS, keywords=(GNN,), extra=extra) as (s, fake, mail):
        s.path.write_text(s.path.read_text(encoding="utf-8").replace(BASE, site))
        settings = changed(load_settings(s.path), first_run_days=10_000, max_per_topic=3)
        assert run_once(settings, clock=lambda: DAY1).ok
        with Store(settings.database) as store:  # as her vote links record them
            for paper, vote in ((LIKED, 1), (LIKED_TOO, 1), (DISLIKED, -1)):
                store.record_vote(ADA, paper, vote, DAY1 + timedelta(hours=2))
        fake.papers += SECOND
        mail.handler.received.clear()
        assert run_once(settings, clock=lambda: DAY2).ok
        (raw,) = [r.data for r in mail.received if r.rcpt_tos == [ADA]]
    _, page = parts(raw)
    email = folder / "email.html"
    email.write_text(page, encoding="utf-8")
    mine = re.search(r'<p class="more">.*?<a href="([^"]+)"', page, re.S)[1].replace("&amp;", "&")
    env = {**os.environ, "DIGEST_CONFIG": str(settings.path), "DIGEST_SECRET": SECRET}
    with serving(env, port):
        yield email.as_uri(), mine


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless chromium for every test of the module."""
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def readable(browser, width: int, name: str) -> None:
    """Assert the reason lines and the bold matched words are there, readable, inside the
    width; and the vote buttons large enough (24 px)."""
    check(browser, ".vt a", width, 2 * 3, f"{name}: vote buttons")
    for selector, least in ((".why", 1), ("h3 b, .ab b", 3)):
        found = measure(browser, selector)
        assert len(found["targets"]) >= least, (name, selector, found)
        for target in found["targets"]:
            assert target["contrast"] >= 4.5, (name, selector, target)
            assert target["right"] <= width, (name, selector, target)


def test_the_email_s_reasons_words_and_vote_buttons_read_well(ranked, browser):
    email, _ = ranked
    ARTIFACTS.mkdir(exist_ok=True)
    for width, scheme in VIEWS:
        show(browser, width, scheme, email)
        readable(browser, width, f"email {width} {scheme}")
        check(browser, ".more a", width, 1, f"email {width} {scheme}: N more")
        browser.save_screenshot(str(ARTIFACTS / f"email-ranked-{width}-{scheme}.png"))


def test_the_readers_page_reads_as_well(ranked, browser):
    _, mine = ranked
    show(browser, 375, "light", mine)
    assert len(browser.find_elements("css selector", "article")) == 4  # all, not the email's 3
    for width, scheme in VIEWS:
        show(browser, width, scheme)
        readable(browser, width, f"/mine {width} {scheme}")
        browser.save_screenshot(str(ARTIFACTS / f"mine-{width}-{scheme}.png"))
