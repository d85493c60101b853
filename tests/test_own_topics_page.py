"""Own topics on the manage page: saved only when every line reads, tried on the last 30 days."""

from __future__ import annotations

import contextlib
import html
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET, stored_paper

from digest.cli import main
from digest.store import Store
from digest.tokens import form_token, manage_token, token_id
from digest.web import ENDPOINT, make_app
from digest.web.own_topics import LineFound, Tries

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA = "ada@example.org"
CSV = "email,name,keywords\nada@example.org,Ada Lovelace,Graph Neural Network\n"
PAPERS = [  # (id, title, authors, categories, days before NOW it arrived)
    ("2602.00001", "Graph neural networks for ranking", ("Thomas Müller",), ("cs.IR",), 1),
    ("2602.00002", "Graph neural networks, a survey", ("Jane Smith",), ("cs.LG",), 3),
    ("2602.00003", "Sparse graph neural networks", ("Ada Lovelace",), ("cs.LG",), 2),
    ("2602.00004", "Graph neural networks at scale", ("Ada Lovelace",), ("cs.IR",), 10),
    ("2601.00005", "Graph neural networks of old", ("Thomas Muller",), ("cs.IR",), 31),
    ("2602.00006", "Dense retrieval", ("Alan Turing",), ("cs.IR",), 5),
]


def remember(settings, email: str = ADA) -> tuple[str, str]:
    """Make `email` a mailed recipient, with some papers in the history; return the path of
    their page and the page's form token."""
    secret = SECRET.encode()
    with Store(settings.database) as store:
        store.remember_recipients([(token_id(secret, email), email)])
        store.record_papers(
            stored_paper(id=i, title=t, abstract="We study them.", authors=a,
                         primary_category=c[0], categories=c)
            for i, t, a, c, _ in PAPERS
        )  # fmt: skip
        with store.transaction():
            for number, (paper_id, *_, age) in enumerate(PAPERS, start=1):
                store.record_arrivals([paper_id], number, NOW - timedelta(days=age))
    token = manage_token(secret, email, 0)
    return f"/manage?token={token}", form_token(secret, "manage", token_id(secret, email))


@contextlib.asynccontextmanager
async def serving(settings):
    """Serve the app with its clock at NOW; yield its URL and a client."""
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: NOW
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            yield str(server.make_url("")).rstrip("/"), client
    finally:
        await server.close()


@pytest.fixture
async def ada(make_settings):
    """Ada's page, own topics on (at most 3); yield (settings, page URL, form, client)."""
    settings = make_settings(subscribers=CSV, extra="\n[web]\nmax_personal_topics = 3\n")
    path, csrf = remember(settings)
    async with serving(settings) as (url, client):
        form = {"csrf": csrf, "topic": "graph neural network", "frequency": "daily"}
        yield settings, url + path, form, client


async def get(client, url: str) -> str:
    async with client.get(url) as answer:
        assert answer.status == 200
        return await answer.text()


async def post(client, url: str, data: dict) -> tuple[int, str]:
    async with client.post(url, data=data) as answer:
        return answer.status, await answer.text()


def box(page: str) -> str:
    """Return what the own-topics box holds, as the browser shows it."""
    found = re.search(r'<textarea id="own_topics" name="own_topics"[^>]*>\n(.*?)</textarea>', page,
                      re.S)  # fmt: skip
    assert found, page
    return html.unescape(found[1])


def own(settings, email: str = ADA) -> tuple[str, ...] | None:
    with Store(settings.database) as store:
        person = store.person(email)
    return person.own_topics if person else None


def said(page: str) -> str:
    """Return a page's text, tags removed and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_a_valid_box_is_saved_line_by_line_with_what_each_found(ada):
    settings, url, form, client = ada
    page = await get(client, url)
    assert box(page) == "" and "aria-invalid" not in page
    assert "au:Müller" in page and "cat:cs.IR" in page  # the syntax, on the page itself
    text = "graph  neural\n\n au:Muller \ngraph  neural\n"  # a repeat, a blank line, spaces
    status, page = await post(client, url, form | {"own_topics": text, "frequency": "weekly"})
    assert status == 200 and 'id="saved"' in page
    assert own(settings) == ("graph neural", "au:Muller")
    assert box(page) == "graph neural\nau:Muller"
    shown = said(page)
    # Four graph papers arrived in the last 30 days (one 31 days ago does not count), newest
    # first; au:Muller finds Müller (accents optional), not the Muller of 31 days ago.
    assert (
        "graph neural : 4 papers, the newest: Graph neural networks for ranking "
        "Sparse graph neural networks Graph neural networks, a survey au:Muller : 1 paper, "
        "the newest: Graph neural networks for ranking"
    ) in shown
    with Store(settings.database) as store:
        assert store.person(ADA).frequency == "weekly"  # and the rest of the form too
    assert box(await get(client, url)) == "graph neural\nau:Muller"


async def test_a_line_that_does_not_read_is_named_and_nothing_is_saved(ada):
    settings, url, form, client = ada
    status, _ = await post(client, url, form | {"own_topics": "cat:cs.IR"})
    assert status == 200 and own(settings) == ("cat:cs.IR",)
    text = 'graph\n\n"open phrase\nau:\n'
    status, page = await post(client, url, form | {"own_topics": text, "frequency": "weekly"})
    assert status == 400
    assert box(page) == text  # what they wrote, to fix
    shown = said(page)
    assert "Nothing was saved: your own topics need a fix" in shown
    assert 'Line 3 ( "open phrase ): a quote is not closed' in shown
    assert "Line 4 ( au: ): au: needs something after it, as in au:Surname" in shown
    assert "Line 1" not in shown
    assert 'aria-invalid="true"' in page
    assert 'aria-describedby="own_topics_errors own_topics_help"' in page
    assert re.search(r'<p class="error" id="own_topics_problem" role="alert">', page)
    assert "cat:cs.IR : 3 papers" in shown  # what is saved is still what it finds
    assert own(settings) == ("cat:cs.IR",)  # nothing saved: neither the topics
    with Store(settings.database) as store:
        assert store.person(ADA).frequency == "daily"  # nor the rest of the form


async def test_a_form_error_keeps_the_box_as_written(ada):
    settings, url, form, client = ada
    status, page = await post(client, url, form | {"own_topics": "graph", "topic": "unknown"})
    assert status == 400 and "Choose at least one topic" in page
    assert box(page) == "graph" and own(settings) is None
    assert "own_topics_problem" not in page  # the box itself is fine


async def test_at_most_max_personal_topics(ada):
    settings, url, form, client = ada
    status, page = await post(client, url, form | {"own_topics": "a\nb\nc\nb\n"})
    assert status == 200 and own(settings) == ("a", "b", "c")  # a repeat is not one more
    status, page = await post(client, url, form | {"own_topics": "a\nb\nc\nd"})
    assert status == 400 and "you can have at most 3 topics; remove 1" in said(page)
    status, page = await post(client, url, form | {"own_topics": "x\n" * 5000})
    assert status == 400 and "you can have at most 3 topics; remove 4997" in said(page)
    assert own(settings) == ("a", "b", "c")
    status, page = await post(client, url, form | {"own_topics": ""})
    assert status == 200 and own(settings) == ()  # an empty box: none
    status, page = await post(client, url, form)  # a form without the box leaves them
    assert status == 200 and own(settings) == ()


async def test_personal_topics_off_shows_no_box_and_ignores_one(make_settings):
    settings = make_settings(subscribers=CSV, extra="\n[web]\npersonal_topics = false\n")
    path, csrf = remember(settings)
    with Store(settings.database) as store:  # written while it was on: kept, shown as data
        store.save_own_topics(ADA, "Ada", "csv", ["graph"], NOW)
    async with serving(settings) as (url, client):
        page = await get(client, url + path)
        assert "own_topics" not in page and "Your own topics" not in page
        form = {"csrf": csrf, "topic": "graph neural network", "own_topics": "au:Turing"}
        status, page = await post(client, url + path, form)
        assert status == 200 and "own_topics" not in page
        assert own(settings) == ("graph",)
        data = said(await get(client, url + path.replace("/manage?", "/manage/data?")))
        assert "Your own topics graph" in data


def test_counts_and_titles_are_of_the_last_30_days_within_a_time(tmp_path, make_settings):
    settings = make_settings(subscribers=CSV)
    remember(settings)
    with Store(settings.database) as store:
        lines = ("au:Lovelace", "cat:cs.IR -graph", "au:", "quantum")
        assert Tries().run(store, lines, NOW) == (
            LineFound("au:Lovelace", 2, ("Sparse graph neural networks",
                                     "Graph neural networks at scale")),
            LineFound("cat:cs.IR -graph", 1, ("Dense retrieval",)),
            LineFound("au:", None, problem="au: needs something after it, as in au:Surname"),
            LineFound("quantum", 0),
        )  # fmt: skip
        tries = Tries()
        assert tries.run(store, ("graph",), NOW)[0].count == 4  # not the one of 31 days ago
        # 25 days later, the paper that arrived 10 days before NOW is out too.
        assert tries.run(store, ("graph",), NOW + timedelta(days=25))[0].count == 3
        few = {"2602.00003", "2602.00002", "2601.00005", "2602.00001"}
        newest = ["Graph neural networks for ranking", "Sparse graph neural networks",
                  "Graph neural networks, a survey"]  # fmt: skip
        assert store.newest_titles(few, 3) == newest  # looked up one by one
        many = few | {f"2602.9{i:04d}" for i in range(600)}  # never arrived
        assert store.newest_titles(many, 3) == newest  # the newest arrivals read in turn
        assert store.newest_titles(set(), 3) == []
        late = Tries(seconds=0).run(store, lines, NOW)  # no time: none counted, all shown
        assert [(f.line, f.count, f.problem) for f in late] == [
            (line, None, None) for line in lines
        ]


async def test_a_line_stored_before_the_syntax_changed_is_shown_and_fixable(ada):
    settings, url, form, client = ada
    with Store(settings.database) as store:
        store.save_own_topics(ADA, "Ada", "csv", ["graph", "xx:old"], NOW)
    page = said(await get(client, url))
    assert "xx:old : this line no longer reads: unknown field xx:" in page
    status, _ = await post(client, url, form | {"own_topics": "graph\nau:old"})
    assert status == 200 and own(settings) == ("graph", "au:old")


async def test_my_data_shows_them_and_delete_leaves_them_nowhere(ada):
    settings, url, form, client = ada
    topic = "au:Zebedee cat:cs.IR"
    await post(client, url, form | {"own_topics": topic})
    data_url = url.replace("/manage?", "/manage/data?")
    assert f"Your own topics {topic}" in said(await get(client, data_url))
    status, page = await post(client, url.replace("/manage?", "/manage/delete?"), form)
    assert status == 200 and "Your data is deleted" in page
    assert own(settings) is None
    conn = sqlite3.connect(settings.database)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                                 "'table' AND name NOT LIKE '%fts%'")]  # fmt: skip
        for table in tables:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert not [r for r in rows if "Zebedee" in repr(r)], table
    finally:
        conn.close()
    journal = settings.database.with_name(settings.database.name + ".requests")
    assert not journal.exists() or "Zebedee" not in journal.read_text()


def test_reset_keeps_own_topics_and_the_operator_sees_and_checks_them(make_settings):
    settings = make_settings(subscribers=CSV)
    with Store(settings.database) as store:
        store.save_choices(
            ADA,
            "Ada",
            "csv",
            {"topics": ["graph neural network"], "frequency": "weekly", "weekday": 2},
            NOW,
        )
        store.save_own_topics(ADA, "Ada", "csv", ["graph", "xx:foo", "au:"], NOW)

    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(settings.path), *args],
                                    env={"DIGEST_SECRET": SECRET})  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.output

    (line,) = [line for line in cli("subscribers").splitlines() if ADA in line]
    assert line.split() == ["ada@example.org", "active", "csv", "weekly", "Wed", "2", "+3", "own"]
    found = [line.strip() for line in cli("check").splitlines() if ADA in line]
    fix = "it finds nothing until they fix it on their manage page, where it is marked"
    assert found == [
        f"warning: {ADA}: the reader's line 2 'xx:foo' no longer reads: unknown field xx: (use "
        f"au: for an author or cat: for a category); {fix}",
        f"warning: {ADA}: the reader's line 3 'au:' no longer reads: au: needs something after "
        f"it, as in au:Surname; {fix}",
    ]
    assert "their 3 own topic(s) stay" in cli("subscribers", "--reset", ADA)
    assert own(settings) == ("graph", "xx:foo", "au:")
    (line,) = [line for line in cli("subscribers").splitlines() if ADA in line]
    assert line.split() == ["ada@example.org", "active", "csv", "daily", "2", "+3", "own"]


async def test_the_counts_are_read_beside_the_write_and_a_page_is_one_read(make_settings):
    settings = make_settings(subscribers=CSV)
    path, csrf = remember(settings)
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: NOW
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    calls: list[str] = []
    database = app[ENDPOINT].database
    for name in ("read", "page", "write"):
        original = getattr(database, name)

        def counted(*args, name=name, original=original):
            calls.append(name)
            return original(*args)

        setattr(database, name, counted)
    url = str(server.make_url(path))
    form = {"csrf": csrf, "topic": "graph neural network", "own_topics": "graph"}
    try:
        async with aiohttp.ClientSession() as client:
            status, page = await post(client, url, form)
            assert status == 200 and "graph : 4 papers" in said(page)
            # Saved on the writer; counted on a read connection, so no write waits for it.
            assert calls == ["write", "read"]
            calls.clear()
            assert "graph : 4 papers" in said(await get(client, url))
            assert calls == ["read"]  # the person and their counts: one call
    finally:
        await server.close()
