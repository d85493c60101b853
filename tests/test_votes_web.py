"""👍 / 👎 from a delivered digest: the raw email's vote links, followed through the endpoint.

One cycle mails Ada, Alan and Grace (recorded once for the module); each test serves a copy of
that database, so what one test votes, undoes or deletes no other sees.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import shutil
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import SECRET, changed, stored_paper
from helpers.cycles import BASE, recording

from digest.links import Links
from digest.pipeline import run_once
from digest.store import Store
from digest.tokens import form_token, token_id
from digest.web import ENDPOINT, make_app

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)
ALAN, GRACE = "alan@example.org", "grace@example.org"
INVALID = "This link is not valid"
HREF = re.compile(r'href="([^"]+)"')
ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def parts(raw: bytes) -> tuple[str, str]:
    """Return the text and HTML parts of a message as received, decoded by the email package
    from their transfer encodings (quoted-printable, base64)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = {
        part.get_content_type(): part.get_payload(decode=True).decode().replace("\r\n", "\n")
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }
    return found["text/plain"], found["text/html"]


def vote_links(raw: bytes) -> dict[str, dict[tuple[str, str], str]]:
    """Return the vote links of each part, by (paper id, vote): the HTML's hrefs, and the text
    part's lines labelled "More like this:" and "Less like this:"."""
    text, page = parts(raw)
    links: dict[str, dict[tuple[str, str], str]] = {"html": {}, "text": {}}
    for url in (html.unescape(u) for u in HREF.findall(page)):
        if url.startswith(f"{BASE}/feedback/"):
            vote, _, paper = read(url)
            links["html"][paper, vote] = url
    for label, url in re.findall(r"^  (More|Less) like this: (\S+)$", text, re.M):
        vote, _, paper = read(url)
        assert vote == ("up" if label == "More" else "down")
        links["text"][paper, vote] = url
    return links


def read(url: str) -> tuple[str, str, str]:
    """Return a vote link's vote, token and paper: /feedback/<vote>/<token>/<paper>."""
    _, feedback, vote, token, paper = urlsplit(url).path.split("/", 4)
    assert feedback == "feedback"
    return vote, token, paper


def altered(url: str, **changes: str) -> str:
    """Return a vote link with some of its parts (vote, token, paper) changed."""
    parts = dict(zip(("vote", "token", "paper"), read(url), strict=True)) | changes
    return f"{BASE}/feedback/{parts['vote']}/{parts['token']}/{parts['paper']}"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


@pytest.fixture(scope="module")
def mailed(tmp_path_factory, fixture_papers):
    """Settings whose database holds one cycle mailed to Ada, Alan and Grace; the raw mail."""
    folder = tmp_path_factory.mktemp("mailed")
    with recording(folder, fixture_papers) as (settings, _, mail):
        settings = changed(settings, first_run_days=10_000)
        assert run_once(settings, clock=lambda: DAY1).ok
        raw = {r.rcpt_tos[0]: r.data for r in mail.received}
    assert set(raw) == {"ada@example.org", ALAN, GRACE}
    return settings, raw


class Site:
    """The endpoint over a copy of the mailed database, and a client."""

    def __init__(self, settings, url: str, client: aiohttp.ClientSession, raw: dict[str, bytes]):
        self.settings, self.url, self.client, self.raw = settings, url, client, raw
        self.links = {who: vote_links(data) for who, data in raw.items()}
        self.signed = Links(BASE, SECRET.encode())

    def local(self, url: str) -> str:
        return url.replace(BASE, self.url)

    async def get(self, url: str) -> tuple[int, str]:
        async with self.client.get(self.local(url)) as answer:
            return answer.status, await answer.text()

    async def post(self, url: str, data: dict | None = None, **headers: str) -> tuple[int, str]:
        async with self.client.post(self.local(url), data=data or {}, headers=headers) as answer:
            return answer.status, await answer.text()

    async def vote(self, url: str, **fields: str) -> tuple[int, str]:
        """Open a vote link and press its button, as a person does."""
        status, page = await self.get(url)
        assert status == 200, page
        return await self.post(url, {"csrf": csrf_of(page), **fields})

    def votes(self) -> dict[str, list[tuple[str, int]]]:
        with Store(self.settings.database) as store:
            rows = store.db.execute("SELECT key, paper_id, vote FROM votes ORDER BY key, paper_id")
            found: dict[str, list[tuple[str, int]]] = {}
            for key, paper, vote in rows:
                found.setdefault(key, []).append((paper, vote))
        return found

    def manage(self, who: str) -> str:
        with Store(self.settings.database) as store:
            return self.signed.manage(who, store.link_version(who))


@pytest.fixture
async def site(mailed, tmp_path):
    settings, raw = mailed
    shutil.copy(settings.database, tmp_path / "digest.db")
    settings = changed(settings, database=tmp_path / "digest.db")
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: DAY1 + timedelta(hours=2)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield Site(settings, str(server.make_url("")).rstrip("/"), client, raw)
    await server.close()


def first(links: dict[tuple[str, str], str], vote: str = "up", n: int = 0) -> tuple[str, str]:
    """Return the n-th paper's (id, link) of a vote."""
    papers = sorted(paper for paper, v in links if v == vote)
    return papers[n], links[papers[n], vote]


async def test_the_raw_email_s_vote_links_record_the_reader_s_vote_on_its_paper(site):
    links = site.links[ALAN]
    assert links["html"] == links["text"]  # both parts: the same signed links
    with Store(site.settings.database) as store:
        mailed = set(store.db.execute("SELECT DISTINCT paper_id FROM seen").fetchall())
    papers = {paper for paper, _ in links["html"]}
    assert papers and {(p,) for p in papers} <= mailed
    assert set(links["html"]) == {(p, v) for p in papers for v in ("up", "down")}
    tokens = [read(u)[1] for u in links["html"].values()]
    assert len(set(tokens)) == len(tokens)  # each paper and vote: its own signature
    assert {t.split(".")[0] for t in tokens} == {token_id(SECRET.encode(), ALAN)}

    paper, up = first(links["html"], "up")
    status, page = await site.get(up)  # a GET (a mail scanner) records nothing
    assert status == 200 and "More like this" in page and "a•••@example.org" in page
    assert ALAN not in page and site.votes() == {}
    status, page = await site.post(up, {"csrf": csrf_of(page)})
    assert status == 200 and 'id="recorded"' in page
    assert site.votes() == {ALAN: [(paper, 1)]}

    other, down = first(links["text"], "down", 1)  # the text part's link works as well
    status, page = await site.vote(down)
    assert status == 200 and "Noted: less like this" in page
    assert site.votes() == {ALAN: sorted([(paper, 1), (other, -1)])}

    # Grace's link records Grace's vote; Alan's stay as they were.
    grace_paper, grace_up = first(site.links[GRACE]["html"])
    assert (await site.vote(grace_up))[0] == 200
    assert site.votes()[GRACE] == [(grace_paper, 1)] and len(site.votes()[ALAN]) == 2


async def test_a_vote_replaces_the_other_and_replaying_it_is_harmless(site):
    links = site.links[ALAN]["html"]
    paper, up = first(links, "up")
    status, page = await site.get(up)
    form = {"csrf": csrf_of(page)}
    for _ in range(3):  # a double click, a reload that posts again
        assert (await site.post(up, form))[0] == 200
    with Store(site.settings.database) as store:
        (before,) = store.votes_of(ALAN)
    status, page = await site.get(links[paper, "down"])
    assert "You had chosen “More like this”" in page  # and GET changed nothing
    assert site.votes() == {ALAN: [(paper, 1)]}
    status, page = await site.vote(links[paper, "down"])
    assert status == 200 and site.votes() == {ALAN: [(paper, -1)]}
    status, page = await site.vote(up)
    with Store(site.settings.database) as store:
        assert store.votes_of(ALAN) == [before]  # back to 👍, with its time


async def test_the_vote_page_s_undo_takes_back_only_its_own_vote(site):
    links = site.links[ALAN]["html"]
    paper, up = first(links, "up")
    status, page = await site.vote(up)
    assert 'id="undo"' in page
    status, page = await site.post(up, {"csrf": csrf_of(page), "undo": "1"})
    assert status == 200 and 'id="undone"' in page and site.votes() == {}
    await site.vote(links[paper, "down"])
    status, _ = await site.post(up, {"csrf": csrf_of(page), "undo": "1"})  # the 👍 link's undo
    assert status == 200 and site.votes() == {ALAN: [(paper, -1)]}  # keeps the 👎


async def test_forged_foreign_and_misused_links_are_refused(site):
    alan, grace = site.links[ALAN]["html"], site.links[GRACE]["html"]
    paper, up = first(alan, "up")
    token, grace_token = read(up)[1], read(first(grace)[1])[1]
    other = next(p for p, _ in alan if p != paper)
    secret = SECRET.encode()
    unknown = Links(BASE, secret).vote(ALAN, 0, "2511.99999", "up")  # genuine, no such paper
    with Store(site.settings.database) as store:
        unsubscribe, manage = site.signed.unsubscribe(ALAN), site.manage(ALAN)
    bad = {
        "forged signature": altered(up, token=token[:-1] + ("A" if token[-1] != "A" else "B")),
        "another paper": altered(up, paper=other),
        "the other vote": altered(up, vote="down"),
        "Grace's id, Alan's signature": altered(
            up, token=grace_token.split(".")[0] + "." + token.split(".", 1)[1]
        ),
        "Alan's link as Grace's": altered(up, token=grace_token),
        "an older version": altered(up, token=token.replace(".v0.", ".v1.")),
        "no such vote": altered(up, vote="sideways"),
        "no paper": f"{BASE}/feedback/up/{token}",
        "the parts as a query": f"{BASE}/feedback?paper={paper}&vote=up&token={token}",
        "no such paper": unknown,
        "an unsubscribe token": altered(up, token=unsubscribe.split("token=")[1]),
        "a manage token": altered(up, token=manage.split("token=")[1]),
    }
    for name, url in bad.items():
        status, page = await site.get(url)
        assert (status, INVALID in page) == (400, True), name
        form = {"csrf": form_token(secret, "feedback", token_id(secret, ALAN))}
        status, page = await site.post(url, form)
        assert (status, INVALID in page) == (400, True), name
    # A vote link is no other link: it opens no page, unsubscribes no one.
    for path in ("/manage", "/manage/data", "/unsubscribe"):
        status, _ = await site.get(f"{site.url}{path}?token={token}")
        assert status == 400, path
    status, _ = await site.post(f"{site.url}/unsubscribe?token={token}")
    assert status == 400
    with Store(site.settings.database) as store:
        assert store.suppression(ALAN) is None
    assert site.votes() == {}


async def test_a_vote_needs_its_own_form_token_and_origin_as_on_manage(site):
    paper, up = first(site.links[ALAN]["html"], "up")
    status, page = await site.get(up)
    secret = SECRET.encode()
    manage_csrf = form_token(secret, "manage", token_id(secret, ALAN))
    for form, headers in (
        ({}, {}),  # no form token
        ({"csrf": "x" * 22}, {}),
        ({"csrf": manage_csrf}, {}),  # the manage page's: another form
        ({"csrf": csrf_of(page)}, {"Origin": "https://evil.example"}),
    ):
        status, _ = await site.post(up, form, **headers)
        assert status == 403, (form, headers)
    assert site.votes() == {}
    status, _ = await site.post(up, {"csrf": csrf_of(page)}, Origin=BASE)
    assert status == 200 and site.votes() == {ALAN: [(paper, 1)]}


async def test_signing_out_makes_the_mailed_vote_links_fail(site):
    paper, up = first(site.links[ALAN]["html"], "up")
    with Store(site.settings.database) as store:
        version = store.revoke_links(ALAN, DAY1)
    status, page = await site.get(up)
    assert status == 400 and INVALID in page
    fresh = site.signed.vote(ALAN, version, paper, "up")  # as the next digest carries it
    assert (await site.vote(fresh))[0] == 200
    assert site.votes() == {ALAN: [(paper, 1)]}


async def test_the_manage_page_lists_the_votes_by_title_each_with_undo(site):
    links = site.links[ALAN]["html"]
    (liked, up), (disliked, down) = first(links, "up"), first(links, "down", 1)
    await site.vote(up)
    await site.vote(down)
    with Store(site.settings.database) as store:
        titles = {p: paper.title for p, paper in store.papers([liked, disliked]).items()}
    manage = site.manage(ALAN)
    status, page = await site.get(manage)
    assert status == 200
    listed = page.split('id="votes"')[1].split("Leaving, or your data")[0]
    more, less = listed.split("Less like these")
    assert html.escape(titles[liked]) in more and html.escape(titles[disliked]) in less
    assert listed.count('class="quiet undo"') == 2
    undo = manage.replace("/manage?", "/unvote?")
    status, _ = await site.post(undo, {"paper": liked})  # no form token: refused
    assert status == 403 and len(site.votes()[ALAN]) == 2
    unsubscribe = site.signed.unsubscribe(ALAN).replace("/unsubscribe?", "/unvote?")
    status, _ = await site.post(unsubscribe, {"csrf": csrf_of(page), "paper": liked})
    assert status == 400 and len(site.votes()[ALAN]) == 2  # an unsubscribe link manages nothing
    status, page = await site.post(undo, {"csrf": csrf_of(page), "paper": liked})
    assert status == 200 and 'id="undone"' in page and html.escape(titles[liked]) in page
    assert site.votes() == {ALAN: [(disliked, -1)]}
    after = page.split('id="undone"')[1].split("</p>", 1)[1]
    assert html.escape(titles[liked]) not in after  # listed no more
    # The page answered at /unvote links as the manage page does: its forms still reach theirs.
    actions = {
        urlsplit(urljoin(site.local(undo), html.unescape(a))).path for a in ACTION.findall(page)
    }
    assert actions == {"/manage", "/unsubscribe", "/manage/signout", "/unvote"}


async def test_my_data_shows_the_votes_and_deleting_removes_them(site):
    paper, up = first(site.links[ALAN]["html"], "up")
    await site.vote(up)
    grace_paper, grace_up = first(site.links[GRACE]["html"])
    await site.vote(grace_up)
    data = site.manage(ALAN).replace("/manage?", "/manage/data?")
    status, page = await site.get(data)
    assert status == 200 and f"(arXiv:{paper})" in page and "1 with 👍" in page
    status, page = await site.post(
        data.replace("/manage/data?", "/manage/delete?"), {"csrf": csrf_of(page)}
    )
    assert status == 200
    assert site.votes() == {GRACE: [(grace_paper, 1)]}  # Alan's gone, Grace's kept
    status, _ = await site.get(up)
    assert status == 400  # his data deleted: his vote links record nothing again


async def test_an_old_arxiv_id_with_a_slash_is_voted_on_too(site):
    with Store(site.settings.database) as store:
        store.record_papers([stored_paper(id="hep-th/9901001", title="Old Strings")])
    url = site.signed.vote(ALAN, 0, "hep-th/9901001", "down")
    assert url.endswith("/feedback/down/" + read(url)[1] + "/hep-th/9901001")
    status, page = await site.vote(url)
    assert status == 200 and "Old Strings" in page
    assert site.votes() == {ALAN: [("hep-th/9901001", -1)]}
