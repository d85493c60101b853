"""Issue 19's acceptance, read from the mail as the SMTP server received it: a reader's votes order
their next digest (the reason said in both parts), Undo gives the plain order back, another
reader keeps it; top picks; a section cut at max_per_topic links to the reader's page, which
lists it all in the same order, with 👍 / 👎 on every paper.

One story, recorded once for the module: Ada and Bob follow the same topic. Day 1: Ada follows
her email's vote links (👍 two papers on drugs and proteins, 👎 one on road traffic). Day 2: the
cycle, and the same cycle again on a copy of the database with max_per_topic = 3. Ada undoes
her votes on her manage page. Day 3: eleven papers; again on a copy with top_picks = 0.
Forged, replayed and cross-reader vote links, and CSRF: tests/test_votes_web.py.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import SECRET, changed, make_paper, stored_paper
from helpers.cycles import BASE, DAY1, GNN, recording
from helpers.ranked import (
    ADA,
    BOB,
    DAY2,
    DAY3,
    DISLIKED,
    DRUGS,
    DRUGS_AGAIN,
    FIRST,
    LIKED,
    LIKED_TOO,
    NEUTRAL,
    READERS,
    SECOND,
    THIRD,
    TRAFFIC,
    Browser,
    copy_database,
    html_sections,
    links,
    order,
    parts,
    said,
    text_sections,
)

from digest.config import load_settings
from digest.links import Links
from digest.pipeline import run_once
from digest.ranker import TOP_PICKS
from digest.store import Store
from digest.tokens import token_id
from digest.web import ENDPOINT, make_app

pytestmark = pytest.mark.slow  # five cycles and the web app: a few seconds
TITLES = {p.id: p.title for p in [*FIRST, *SECOND, *THIRD]}
MORE_LIKE_THIS = "Because you liked: "


@dataclass
class Story:
    """What the cycles left: each run's raw mail by recipient, and each run's settings."""

    settings: dict[str, object] = field(default_factory=dict)
    mail: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def parts(self, run: str, who: str) -> tuple[str, str]:
        return parts(self.mail[run][who])


async def serve(settings, moment, work):
    """Serve the web app over settings' database, its clock at `moment`; return work(browser)."""
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: moment
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            return await work(Browser(client, str(server.make_url("")).rstrip("/")))
    finally:
        await server.close()


def vote_link(raw: bytes, paper: str, vote: str) -> str:
    """Return the HTML part's vote link on a paper."""
    _, page = parts(raw)
    (found,) = [u for u in links(page, f"{BASE}/feedback/{vote}/") if u.endswith(f"/{paper}")]
    return found


async def vote(browser: Browser, link: str) -> None:
    """Open a vote link and press its one button."""
    status, page = await browser.get(link)
    assert status == 200, page
    assert 'id="recorded"' in await browser.submit(link, page)


def votes(settings) -> dict[str, int]:
    with Store(settings.database) as store:
        return {v.paper_id: v.vote for v in store.votes_of(ADA)}


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    folder = tmp_path_factory.mktemp("ranked")
    told = Story()
    with recording(folder, FIRST, subscribers=READERS, keywords=(GNN,)) as (s, fake, mail):
        settings = changed(s, first_run_days=10_000)

        def run(name: str, moment, settings=settings) -> None:
            mail.handler.received.clear()
            assert run_once(settings, clock=lambda: moment).ok
            told.mail[name] = {r.rcpt_tos[0]: r.data for r in mail.received}
            told.settings[name] = settings

        run("day 1", DAY1)
        raw = told.mail["day 1"][ADA]
        chosen = [(LIKED, "up"), (LIKED_TOO, "up"), (DISLIKED, "down")]

        async def votes_from_the_email(browser: Browser) -> None:
            for paper, choice in chosen:
                await vote(browser, vote_link(raw, paper, choice))

        asyncio.run(serve(settings, DAY1 + timedelta(hours=2), votes_from_the_email))
        assert votes(settings) == {LIKED: 1, LIKED_TOO: 1, DISLIKED: -1}
        copy = folder / "cut.db"
        copy_database(settings.database, copy)

        fake.papers += SECOND
        run("day 2", DAY2)
        cut = changed(settings, database=copy, max_per_topic=3, archive=folder / "cut.md")
        run("day 2, max 3", DAY2, cut)

        async def undo_on_the_manage_page(browser: Browser) -> None:
            text, _ = parts(told.mail["day 2"][ADA])
            manage = re.search(r"Manage your subscription \(.*?\): (\S+)", text, re.S)[1]
            status, page = await browser.get(manage)
            assert status == 200
            for paper, _ in chosen:
                page = await browser.submit(manage, page, "unvote", paper=paper)
                assert 'id="undone"' in page

        asyncio.run(serve(settings, DAY2 + timedelta(hours=2), undo_on_the_manage_page))
        assert votes(settings) == {}
        copy_database(settings.database, folder / "no-picks.db")

        fake.papers += THIRD
        run("day 3", DAY3)
        no_picks = changed(
            settings, database=folder / "no-picks.db", top_picks=0, archive=folder / "np.md"
        )
        run("day 3, no picks", DAY3, no_picks)
    return told


def test_likes_lift_a_paper_on_their_subject_first_with_its_reason_in_both_parts(story):
    text, page = story.parts("day 2", ADA)
    html_part, text_part = html_sections(page), text_sections(text)
    assert list(html_part) == [GNN] == list(text_part)  # four papers: no top picks
    ada = order(html_part)
    assert ada == order(text_part) and sorted(ada) == sorted(p.id for p in SECOND)
    assert ada[0] == DRUGS  # first for Ada ...
    bob = order(html_sections(story.parts("day 2", BOB)[1]))
    assert bob[-1] == DRUGS  # ... where the words and the date put it last
    assert min(SECOND, key=lambda p: p.updated).id == DRUGS
    for part in (dict(html_part[GNN])[DRUGS], dict(text_part[GNN])[DRUGS]):
        reason = said(part).split(MORE_LIKE_THIS)[1]
        assert reason.startswith((TITLES[LIKED], TITLES[LIKED_TOO])), reason
    lifted = [pid for pid, chunk in html_part[GNN] if MORE_LIKE_THIS in chunk]
    assert lifted == [DRUGS]  # only the paper her likes lifted says so
    assert "<b>graph</b> <b>neural</b> <b>network</b>" in dict(html_part[GNN])[DRUGS]
    assert "<b>" not in text  # the matched words: bold in HTML, nothing added to the text


def test_a_dislike_pushes_a_similar_paper_down(story):
    ada = order(html_sections(story.parts("day 2", ADA)[1]))
    bob = order(html_sections(story.parts("day 2", BOB)[1]))
    assert bob.index(TRAFFIC) < min(bob.index(n) for n in NEUTRAL)  # the words put it first
    assert ada.index(TRAFFIC) > max(ada.index(n) for n in NEUTRAL)  # below the neutral ones


def test_another_reader_with_the_same_topics_keeps_the_plain_order(story):
    for day in ("day 2", "day 3"):
        text, page = story.parts(day, BOB)
        assert MORE_LIKE_THIS not in text and MORE_LIKE_THIS not in page
    bob = order(html_sections(story.parts("day 2", BOB)[1]))
    assert bob[0] == TRAFFIC and set(bob[1:3]) == set(NEUTRAL) and bob[3] == DRUGS  # words


def test_undo_restores_the_plain_order_the_cycle_after(story):
    text, page = story.parts("day 3", ADA)
    ada, bob = html_sections(page), html_sections(story.parts("day 3", BOB)[1])
    assert [(t, order(ada, t)) for t in ada] == [(t, order(bob, t)) for t in bob]  # as Bob's
    assert order(ada)[-1] == DRUGS_AGAIN and MORE_LIKE_THIS not in text + page
    assert order(text_sections(text)) == order(ada)


def test_top_picks_lead_a_mail_of_more_than_ten_papers_unless_turned_off(story):
    for who in (ADA, BOB):
        text, page = story.parts("day 3", who)
        html_part, text_part = html_sections(page), text_sections(text)
        assert list(html_part) == [TOP_PICKS, GNN] == list(text_part)
        assert len(THIRD) == 11 and len(order(html_part)) == 11  # the section keeps them all
        picks = order(html_part, TOP_PICKS)
        assert picks == order(html_part)[:5] == order(text_part, TOP_PICKS)
        assert "11 new papers" in said(page)  # the picks are not counted twice
        assert TOP_PICKS not in said(story.parts("day 2", who)[1])  # four papers: none
    text, page = story.parts("day 3, no picks", ADA)
    assert list(html_sections(page)) == [GNN] == list(text_sections(text))
    assert order(html_sections(page)) == order(html_sections(story.parts("day 3", ADA)[1]))


def test_max_per_topic_cuts_a_section_to_its_best_with_n_more_to_the_readers_page(story):
    settings = story.settings["day 2, max 3"]
    full = order(html_sections(story.parts("day 2", ADA)[1]))  # the same cycle, uncut
    text, page = story.parts("day 2, max 3", ADA)
    assert order(html_sections(page)) == full[:3] == order(text_sections(text))
    (more,) = re.findall(r'<p class="more">(.*?)</p>', page)
    assert said(more) == "… and 1 more paper in this topic: see all 4 on the web."
    (url,) = links(more, f"{BASE}/mine?")
    query = parse_qs(urlsplit(url).query)
    assert query["day"] == ["2025-11-17"] and query["topic"] == ["graph-neural-network"]
    assert f"… and 1 more paper in this topic; see all 4 on the web:\n  {url}\n" in text
    bob_text, bob_page = story.parts("day 2, max 3", BOB)
    (bob_url,) = links(bob_page, f"{BASE}/mine?")
    assert bob_url != url and bob_url in bob_text  # each reader's own page

    async def pages(browser: Browser):
        found = {}
        for who, link in ((ADA, url), (BOB, bob_url)):
            status, found[who] = await browser.get(link)
            assert status == 200
        # Every paper has its 👍 / 👎, signed for the reader whose page it is.
        ups = links(found[ADA], f"{BASE}/feedback/up/")
        downs = links(found[ADA], f"{BASE}/feedback/down/")
        assert [u.rsplit("/", 1)[1] for u in ups] == full == [d.rsplit("/", 1)[1] for d in downs]
        ids = {urlsplit(u).path.split("/")[3].split(".")[0] for u in ups + downs}
        assert ids == {token_id(SECRET.encode(), ADA)}
        await vote(browser, downs[1])
        status, again = await browser.get(url)  # her page of that day: as that day's email
        assert re.findall(r'abs/([^"]+)v\d+">', again) == full
        return found

    found = asyncio.run(serve(settings, DAY2 + timedelta(hours=3), pages))
    ada = re.findall(r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+">', found[ADA])
    assert ada == full  # all four, in the order of her uncut email
    assert "Because you liked: " + TITLES[LIKED] in said(found[ADA]) or (
        "Because you liked: " + TITLES[LIKED_TOO] in said(found[ADA])
    )
    bob = re.findall(r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+">', found[BOB])
    assert bob == order(html_sections(story.parts("day 2", BOB)[1]))  # his: the plain order
    assert MORE_LIKE_THIS not in found[BOB]
    with Store(settings.database) as store:  # the vote from her page: hers
        assert store.vote_on(ADA, full[1]) == -1 and store.vote_on(BOB, full[1]) is None


def test_titles_read_as_text_on_the_readers_pages(story, tmp_path):
    settings = changed(story.settings["day 2, max 3"], database=tmp_path / "latex.db")
    copy_database(story.settings["day 2, max 3"].database, settings.database)
    with Store(settings.database) as store:  # the liked papers' next versions: LaTeX in titles
        store.record_papers(
            stored_paper(id=p.id, title=p.title + r" in $\mathcal{O}(n \log n)$", version=2,
                         abstract=p.abstract, authors=tuple(p.authors))
            for p in FIRST[:2]
        )  # fmt: skip
        version = store.link_version(ADA)
    readable, source = "in \U0001d4aa(n log n)", r"\mathcal"  # \mathcal{O}: script O
    signed = Links(BASE, SECRET.encode())
    manage = signed.manage(ADA, version)
    pages = {
        "vote": signed.vote(ADA, version, LIKED, "down"),
        "manage": manage,
        "my data": manage.replace("/manage?", "/manage/data?"),
        "mine": signed.mine(ADA, version) + "&day=2025-11-17&topic=graph-neural-network",
    }

    async def read(browser: Browser) -> dict[str, str]:
        return {name: (await browser.get(url))[1] for name, url in pages.items()}

    for name, page in asyncio.run(serve(settings, DAY2 + timedelta(hours=3), read)).items():
        assert readable in said(page) and source not in page, name
    (reason,) = re.findall(r'<p class="why">(.*?)</p>', page)  # /mine's reason line
    assert reason.startswith("Because you liked: ") and reason.endswith(readable)


def test_a_reader_whose_own_topics_match_nothing_does_not_upset_the_next(
    make_settings, fake_arxiv, mail_server
):
    """Ranking scores own-topic sections over the arrivals only for a reader whose own topics
    matched: a reader before them whose topics matched nothing must not leave them out."""
    readers = f"email,name,keywords\ncy@example.org,Cy,{GNN}\ndee@example.org,Dee,{GNN}\n"
    settings = make_settings(subscribers=readers, keywords=(GNN,))
    text = settings.path.read_text(encoding="utf-8")
    settings.path.write_text(text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n'))
    settings = changed(load_settings(settings.path), first_run_days=10_000)
    with Store(settings.database) as store:
        store.save_own_topics("cy@example.org", "", "csv", ["zebra"], DAY1)
        store.save_own_topics("dee@example.org", "", "csv", ["protein"], DAY1)
    fake_arxiv.papers[:] = [
        make_paper("2511.10001", f"{GNN} layers", DAY1, categories=["cs.IR"]),
        make_paper(  # harvested: news of no keyword
            "2511.10002", "Protein folding", DAY1, primary_category="cs.LG", categories=["cs.LG"]
        ),
    ]
    assert run_once(settings, clock=lambda: DAY1).ok
    (raw,) = [r.data for r in mail_server.received if r.rcpt_tos == ["dee@example.org"]]
    _, page = parts(raw)
    assert list(html_sections(page)) == [GNN, "protein"]
