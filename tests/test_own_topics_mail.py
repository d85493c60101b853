"""Readers' own topics in their email: harvested papers matched locally, against real stores.

One story, recorded once: three daily cycles with `[arxiv] harvest = ["cs.LG"]` and a local
keyword; readers with own topics (identical, different, weekly, without list topics) added after
the first. Each cycle's mail is read as the SMTP server received it.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import make_paper
from helpers.cycles import BASE, DAY1, GNN, LLM, cycle, papers_in, recording
from helpers.fake_arxiv import busy_papers

from digest.config import load_settings
from digest.pipeline import run_once
from digest.store import Store
from digest.web import make_app

DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)
SPARSE = "Sparse Coding"  # a local keyword: matched in the cycle's new papers, never fetched
READERS = f"""email,name,keywords
alan@example.org,Alan Turing,{GNN}
bea@example.org,Bea,{GNN}
cid@example.org,Cid,{GNN}
grace@example.org,Grace Hopper,{LLM}
dan@example.org,Dan,{SPARSE}
wes@example.org,Wes Weekly,{LLM}
"""
OWN = {  # own topic lines, saved after the first cycle
    "alan@example.org": ["sparse attention", "au:Hopper"],
    "bea@example.org": ["sparse attention", "au:Hopper"],  # as Alan's: one body for both
    "cid@example.org": ["sparse attention"],
    "wes@example.org": ["sparse attention"],  # weekly, on the third day
    "olga@example.org": ["protein folding"],  # a web sign-up with no list topic
}


def at(day, hours: float) -> object:
    return day - timedelta(hours=hours)


A = make_paper("2511.20001", "Sparse attention for long documents", at(DAY2, 9))
B = make_paper("2511.20002", f"{GNN} layers with sparse attention", at(DAY2, 10))
C = make_paper(
    "2511.20003", "Protein folding with transformers", at(DAY2, 11), authors=["Grace Hopper"]
)
D = make_paper("2511.20004", f"{SPARSE} of images", at(DAY2, 12))
E = make_paper("2511.20005", "Quantum chemistry at scale", at(DAY2, 13))
L = make_paper("2511.20006", f"{LLM} pretraining", at(DAY2, 14))
F = make_paper("2511.30001", "Sparse attention revisited", at(DAY3, 9))
G = make_paper("2511.30002", f"{LLM} with sparse attention", at(DAY3, 10))
FIRST = [make_paper("2511.10001", f"{GNN} basics", at(DAY1, 10))]


def harvesting(settings, extra: str = ""):
    """Return settings that harvest cs.LG (and whatever `extra` adds), loaded again."""
    text = settings.path.read_text(encoding="utf-8")
    text = text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n') + extra
    settings.path.write_text(text, encoding="utf-8")
    return load_settings(settings.path)


LOCAL = f'\n[[keywords]]\nname = "{SPARSE}"\nlocal = true\ncategories = ["cs.LG"]\n'


@dataclass
class Story:
    """What the three cycles left: the settings, each day's mail and report, the fake's log."""

    settings: object
    mail: dict[int, dict[str, list]] = field(default_factory=dict)  # day -> rcpt -> messages
    reports: dict[int, object] = field(default_factory=dict)
    queries: collections.Counter = field(default_factory=collections.Counter)

    def message(self, day: int, email: str):
        (found,) = self.mail[day].get(email, [None])
        return found

    def text(self, day: int, email: str) -> str:
        return self.message(day, email).get_body(("plain",)).get_content()


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    folder = tmp_path_factory.mktemp("own")
    with recording(folder, FIRST, subscribers=READERS, keywords=(GNN, LLM)) as (s, fake, mail):
        settings = harvesting(s, LOCAL)
        told = Story(settings)
        for day, moment, papers in (
            (1, DAY1, []),
            (2, DAY2, [A, B, C, D, E, L]),
            (3, DAY3, [F, G]),
        ):
            if day == 2:
                own_topics(settings)
            if day == 3:  # Alan stops following "sparse attention"
                with Store(settings.database) as store:
                    store.save_own_topics("alan@example.org", "", "csv", ["au:Hopper"], DAY2)
            fake.papers += papers
            fake.requests.clear()
            mail.handler.received.clear()
            told.reports[day] = run_once(settings, clock=lambda moment=moment: moment)
            told.mail[day] = mail.by_recipient()
            told.queries.update(r.query["search_query"] for r in fake.requests)
    return told


def own_topics(settings) -> None:
    """Save everyone's own topic lines; Olga signs up on the web with no list topic."""
    with Store(settings.database) as store:
        store.add_signup("olga-nonce", "olga@example.org", "Olga", [], DAY1)
        store.confirm_signup("olga-nonce", DAY1)
        weekly = {"frequency": "weekly", "weekday": DAY3.weekday()}
        store.save_choices("wes@example.org", "", "csv", weekly, DAY1)
        for email, lines in OWN.items():
            store.save_own_topics(email, "", "web" if "olga" in email else "csv", lines, DAY1)


def sections(message) -> list[str]:
    """Return the section titles of a message's HTML part, in order."""
    html = message.get_body(("html",)).get_content()
    return re.findall(r"<h2 id=\"topic-\d+\"[^>]*>(.*?) <span class=\"n\">", html)


def test_a_harvested_paper_reaches_only_the_readers_whose_own_topic_matches(story):
    assert story.reports[2].ok
    alan = story.message(2, "alan@example.org")
    assert sections(alan) == [GNN, "sparse attention", "au:Hopper"]
    assert papers_in(alan) == [B.id, A.id, C.id]  # under each topic as the reader wrote it
    text = story.text(2, "alan@example.org")
    assert "== sparse attention (1) ==" in text and "== au:Hopper (1) ==" in text
    assert "follows Graph Neural Network, your own topics on" in " ".join(text.split())
    grace = story.message(2, "grace@example.org")  # no own topic: her list topic only
    assert sections(grace) == [LLM] and papers_in(grace) == [L.id]
    olga = story.message(2, "olga@example.org")  # no list topic: her own topic alone
    assert sections(olga) == ["protein folding"] and papers_in(olga) == [C.id]
    assert "View in your browser" not in story.text(2, "olga@example.org")
    everyone = {p for messages in story.mail[2].values() for m in messages for p in papers_in(m)}
    assert E.id not in everyone  # harvested, matched by nobody: mailed to nobody


def test_a_paper_of_a_keyword_and_an_own_topic_is_shown_once_with_also_in(story):
    text = story.text(2, "alan@example.org")
    assert text.count(B.title) == 1
    gnn_part = text.split(f"== {GNN} (1) ==")[1].split("== sparse attention")[0]
    assert B.title in gnn_part and "Also in: sparse attention" in gnn_part
    assert papers_in(story.message(2, "alan@example.org")).count(B.id) == 1
    html = story.message(2, "alan@example.org").get_body(("html",)).get_content()
    assert "Also in: sparse attention" in html


def test_readers_with_the_same_topics_share_one_edition(story):
    with Store(story.settings.database) as store:
        rows = dict(
            store.db.execute("SELECT email, edition_id FROM outbox WHERE cycle_id = 2").fetchall()
        )
    assert rows["alan@example.org"] == rows["bea@example.org"]  # same list and own topics
    assert rows["cid@example.org"] != rows["alan@example.org"]  # one own topic less
    assert len(set(rows.values())) == 5  # alan+bea, cid, grace, dan, olga
    cid = story.message(2, "cid@example.org")
    assert sections(cid) == [GNN, "sparse attention"]
    for email in ("alan@example.org", "bea@example.org"):  # each their own links, all the same
        message = story.message(2, email)
        assert email in message.get_body(("plain",)).get_content()


def test_a_weekly_reader_gets_every_match_since_their_last_digest(story):
    assert "wes@example.org" not in story.mail[2]  # not their day
    wes = story.message(3, "wes@example.org")
    assert sections(wes) == [LLM, "sparse attention"]
    # G is news of their list topic, also in their own, and L was news of the LLM keyword in
    # a cycle they had not been mailed yet; then the week's other matches (each section in
    # the ranking's order: test_ranking).
    shown = papers_in(wes)
    assert set(shown[:2]) == {G.id, L.id} and sorted(shown[2:]) == sorted([F.id, A.id, B.id])
    assert "Also in: sparse attention" in story.text(3, "wes@example.org")


def test_removing_a_topic_stops_it_from_the_next_cycle(story):
    assert "alan@example.org" not in story.mail[3]  # F and G would have been his
    bea = story.message(3, "bea@example.org")  # who still has it
    assert sections(bea) == ["sparse attention"] and papers_in(bea) == [F.id, G.id]


def test_an_unparseable_stored_line_is_skipped(make_settings, fake_arxiv, mail_server, caplog):
    settings = harvesting(
        make_settings(subscribers=f"email,name,keywords\nbo@example.org,Bo,{GNN}\n")
    )
    fake_arxiv.papers[:] = FIRST
    assert run_once(settings, clock=lambda: DAY1).ok
    with Store(settings.database) as store:  # as an upgrade that changed the syntax might
        store.save_own_topics("bo@example.org", "", "csv", ["au:", "sparse attention"], DAY1)
    fake_arxiv.papers += [A, B]
    mail_server.handler.received.clear()
    with caplog.at_level("WARNING", logger="digest.own_matches"):
        assert run_once(settings, clock=lambda: DAY2).ok
    (message,) = mail_server.by_recipient()["bo@example.org"]
    assert sections(message) == [GNN, "sparse attention"] and papers_in(message) == [B.id, A.id]
    (line,) = [r.getMessage() for r in caplog.records if "no longer parse" in r.getMessage()]
    assert line.startswith("own topics: 1 stored topic line(s)")


def test_a_local_keyword_costs_no_request_and_is_mailed_and_archived_like_any(story):
    assert not [q for q in story.queries if SPARSE.casefold() in q.casefold()]
    assert story.queries["cat:cs.LG"] == 3  # the harvest: one request a cycle
    assert len(story.queries) == 3  # GNN, LLM and the harvest: nothing else was asked
    dan = story.message(2, "dan@example.org")
    assert sections(dan) == [SPARSE] and papers_in(dan) == [D.id]
    assert f"{SPARSE}: 1 matched locally, 1 new" in story.reports[2].summary()
    archive = story.settings.archive.read_text(encoding="utf-8")
    assert f"## {SPARSE}" in archive and D.title in archive.split(f"## {SPARSE}")[1]
    with Store(story.settings.database) as store:
        seen = store.db.execute(
            "SELECT paper_id, news FROM seen WHERE keyword = ?", [SPARSE.casefold()]
        ).fetchall()
    assert seen == [(D.id, 1)]  # news, as a fetched keyword's: its page and feed show it


@pytest.mark.slow
async def test_a_cut_short_own_topic_links_to_the_readers_own_page(
    make_settings, fake_arxiv, mail_server
):
    settings = harvesting(
        make_settings(subscribers=f"email,name,keywords\nbo@example.org,Bo,{GNN}\n")
    )
    fake_arxiv.papers[:] = FIRST
    assert (await cycle(settings, DAY1)).ok
    with Store(settings.database) as store:
        store.save_own_topics("bo@example.org", "", "csv", ["sparse attention"], DAY1)
    fake_arxiv.papers += busy_papers(300, "Sparse attention", newest=at(DAY2, 9))
    mail_server.handler.received.clear()
    assert (await cycle(settings, DAY2)).ok
    (message,) = mail_server.by_recipient()["bo@example.org"]
    html = message.get_body(("html",)).get_content()
    more = re.search(r'in this topic: <a href="([^"]+)">see all 300 on the web</a>', html)
    assert more, "the section is not cut short, or has no link"
    url = more[1].replace("&amp;", "&")
    assert url.startswith(f"{BASE}/mine?token=") and url.endswith("&day=2025-11-17")
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as client:
            async with client.get(url.replace(BASE, base)) as answer:
                page = await answer.text()
            assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
            assert "sparse attention <span" in page and "The first 200 of 300" in page
            assert page.count("<article>") == 200
            listed = re.findall(r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+"', page)
            picks, mailed = papers_in(message)[:5], papers_in(message)[5:]  # top picks first
            assert 0 < len(mailed) < 200 and listed[: len(mailed)] == mailed  # in the same order
            assert picks == mailed[:5]
            async with client.get(url.replace(BASE, base).replace("token=", "token=x")) as bad:
                assert bad.status == 400
            async with client.get(url.replace(BASE, base) + "1") as bad_day:  # 2025-11-171
                assert bad_day.status == 400
            week = url.replace(BASE, base).replace(
                "day=2025-11-17", "day=2025-11-18&since=2025-11-16"
            )
            async with client.get(week) as answer:  # a weekly digest's: after the 16th, to the 18th
                page = await answer.text()
            assert "from 17 November 2025 to 18 November 2025" in page and "(300)" in page
            with Store(settings.database) as store:  # signed out: the page is closed too
                store.revoke_links("bo@example.org", DAY2)
            async with client.get(url.replace(BASE, base)) as revoked:
                assert revoked.status == 400 and "sparse attention" not in await revoked.text()
    finally:
        await server.close()


def test_with_personal_topics_off_own_topics_are_ignored(make_settings, fake_arxiv, mail_server):
    readers = f"email,name,keywords\nbo@example.org,Bo,{GNN}\n"
    settings = harvesting(
        make_settings(subscribers=readers, extra="\n[web]\npersonal_topics = false\n")
    )
    fake_arxiv.papers[:] = FIRST
    assert run_once(settings, clock=lambda: DAY1).ok
    with Store(settings.database) as store:
        store.save_own_topics("bo@example.org", "", "csv", ["sparse attention"], DAY1)
    fake_arxiv.papers += [A, B]
    mail_server.handler.received.clear()
    assert run_once(settings, clock=lambda: DAY2).ok
    (message,) = mail_server.by_recipient()["bo@example.org"]
    assert sections(message) == [GNN] and papers_in(message) == [B.id]
    assert "Also in" not in message.get_body(("plain",)).get_content()
