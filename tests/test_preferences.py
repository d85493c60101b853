"""People manage themselves: their page, weekly digests, pauses, their data; and CSRF."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers.builders import SECRET, changed, make_paper
from helpers.cycles import ALAN, GNN, cycle

from digest.pipeline import run_once
from digest.store import Store
from digest.tokens import form_token, make_token, parse_token

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)  # a Monday; Paris is an hour ahead


def day(n: int) -> datetime:
    return DAY1 + timedelta(days=n)


def gnn_news(fake, n: int) -> str:
    """Add a GNN paper announced the evening before day n; return its id."""
    paper_id = f"2511.6{n:04d}"
    fake.papers.append(make_paper(paper_id, f"{GNN} news of day {n}", day(n) - timedelta(hours=10)))
    return paper_id


def mailed_ids(mail_server) -> list[list[str]]:
    """Return, per message received, the arXiv ids in its HTML part."""
    return [
        re.findall(
            r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+"',
            r.message.get_body(("html",)).get_content(),
        )
        for r in mail_server.received
    ]


def link(email: str) -> str:
    return f"/manage?token={make_token(SECRET.encode(), email)}"


def csrf(email: str) -> str:
    return form_token(SECRET.encode(), "manage", parse_token(make_token(SECRET.encode(), email)))


async def post(client, url: str, data: dict, **headers) -> tuple[int, str]:
    async with client.post(url, data=data, headers=headers) as answer:
        return answer.status, await answer.text()


@pytest.fixture
async def alan(make_settings, fake_arxiv, mail_server):
    """Alan, who follows GNN daily, after a first cycle; and the web endpoint."""
    import aiohttp
    from aiohttp.test_utils import TestServer

    from digest.web import ENDPOINT, make_app

    settings = changed(make_settings(subscribers=ALAN), first_run_days=10_000)
    await cycle(settings, day(0))  # his first cycle mails him: he is now a recipient
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: day(0)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield settings, str(server.make_url("")).rstrip("/"), client
    await server.close()


async def test_the_page_shows_the_csv_row_and_a_get_changes_nothing(alan):
    settings, base, client = alan
    async with client.get(base + link("alan@example.org")) as answer:
        page = await answer.text()
    assert answer.status == 200
    assert 'value="graph neural network" checked' in page
    assert 'value="large language model">' in page  # not followed
    assert 'value="daily" checked' in page and "a•••@example.org" in page
    with Store(settings.database) as store:
        assert store.person("alan@example.org") is None


@pytest.mark.slow
async def test_weekly_then_daily_loses_and_repeats_nothing(alan, fake_arxiv, mail_server):
    settings, base, client = alan
    url = base + link("alan@example.org")
    form = {"csrf": csrf("alan@example.org"), "topic": "graph neural network"}
    status, page = await post(client, url, form | {"frequency": "weekly", "weekday": "4"})
    assert status == 200 and 'id="saved"' in page and '<option value="4" selected>' in page
    mail_server.handler.received.clear()
    announced = []
    for n in range(1, 4):  # Tuesday to Thursday: news every day, no mail (he reads on Fridays)
        announced.append(gnn_news(fake_arxiv, n))
        await cycle(settings, day(n))
        assert mail_server.received == []
    announced.append(gnn_news(fake_arxiv, 4))
    await cycle(settings, day(4))  # Friday: one email with the four days' papers
    assert mailed_ids(mail_server) == [list(reversed(announced))]
    text = mail_server.received[0].message.get_body(("plain",)).get_content()
    assert "4 new papers on arXiv since Monday 17 November 2025" not in text
    assert "4 new papers on arXiv since 17 November 2025" in text
    await cycle(settings, day(4) + timedelta(hours=6))  # a second cycle that Friday: nothing
    assert len(mail_server.received) == 1
    mail_server.handler.received.clear()
    announced = [gnn_news(fake_arxiv, 5)]
    await cycle(settings, day(5))  # Saturday, weekly: waits
    status, _ = await post(client, url, form | {"frequency": "daily"})
    announced.append(gnn_news(fake_arxiv, 6))
    await cycle(settings, day(6))  # daily again: Saturday's and Sunday's, nothing before
    assert mailed_ids(mail_server) == [list(reversed(announced))]
    mail_server.handler.received.clear()
    gnn_news(fake_arxiv, 7)
    await cycle(settings, day(7))
    assert mailed_ids(mail_server) == [["2511.60007"]]  # and then one day at a time


async def test_a_pause_sends_nothing_then_only_the_days_after_it(alan, fake_arxiv, mail_server):
    settings, base, client = alan
    form = {"csrf": csrf("alan@example.org"), "topic": "graph neural network"}
    status, page = await post(
        client, base + link("alan@example.org"), form | {"paused_until": "2025-11-20"}
    )
    assert status == 200 and 'value="2025-11-20"' in page
    mail_server.handler.received.clear()
    for n in (1, 2):  # 18 and 19 November: paused
        gnn_news(fake_arxiv, n)
        await cycle(settings, day(n))
    assert mail_server.received == []
    after = gnn_news(fake_arxiv, 3)
    await cycle(settings, day(3))  # 20 November: the pause is over
    assert mailed_ids(mail_server) == [[after]]  # no backlog of the paused days
    text = mail_server.received[0].message.get_body(("plain",)).get_content()
    assert "Your pause ended on 20 November 2025" in " ".join(text.split())
    with Store(settings.database) as store:
        assert store.person("alan@example.org").paused_until is None


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        ({"topic": "graph neural network"}, {}, 403),  # no form token
        ({"topic": "graph neural network", "csrf": "forged"}, {}, 403),
        ({"topic": "graph neural network"}, {"Origin": "https://evil.example"}, 403),
        ({"topic": "graph neural network", "csrf": None}, {"Origin": "https://evil.example"}, 403),
        ({"csrf": None}, {}, 400),  # no topic: the form again, with the reason
        ({"topic": "graph neural network", "csrf": None, "paused_until": "1999-01-01"}, {}, 400),
    ],
)
async def test_a_post_needs_its_form_token_and_origin(alan, data, headers, status):
    settings, base, client = alan
    data = {
        k: (csrf("alan@example.org") if k == "csrf" and v is None else v) for k, v in data.items()
    }
    got, page = await post(client, base + link("alan@example.org"), data, **headers)
    assert got == status, page[-500:]
    with Store(settings.database) as store:
        assert store.person("alan@example.org") is None  # nothing saved


async def test_one_person_cannot_reach_another_persons_page(alan):
    _, base, client = alan
    mine = make_token(SECRET.encode(), "alan@example.org")
    other = make_token(SECRET.encode(), "ada@example.org")  # never mailed: unknown id
    forged = mine[:-2] + ("AA" if not mine.endswith("AA") else "BB")
    for token in (other, forged, "", "x.y"):
        async with client.get(base + f"/manage?token={token}") as answer:
            assert answer.status == 400 and "alan" not in (await answer.text())
    # A form token is bound to its person: Alan's cannot save anyone else's page.
    status, _ = await post(
        client, base + f"/manage?token={other}", {"csrf": csrf("alan@example.org"), "topic": "x"}
    )
    assert status == 400


async def test_delete_my_data_keeps_only_the_address_that_keeps_mail_away(
    alan, fake_arxiv, mail_server
):
    settings, base, client = alan
    token = make_token(SECRET.encode(), "alan@example.org")
    async with client.get(base + f"/manage/data?token={token}") as answer:
        page = await answer.text()
    assert "alan@example.org" in page and "Digests sent</dt><dd>1" in page
    status, page = await post(
        client, base + f"/manage/delete?token={token}", {"csrf": csrf("alan@example.org")}
    )
    assert status == 200 and "Your data is deleted" in page
    with Store(settings.database) as store:
        assert store.suppression("alan@example.org")[0] == "deleted"
        assert store.person("alan@example.org") is None
        assert store.recipient(parse_token(token)) is None
        assert store.db.execute(
            "SELECT count(*) FROM outbox WHERE email LIKE 'alan%'"
        ).fetchone() == (0,)
    mail_server.handler.received.clear()
    gnn_news(fake_arxiv, 1)
    await cycle(settings, day(1))
    assert mail_server.received == []  # still on the list file, never mailed again
    assert date(2025, 11, 17)  # the days above are in the Paris time zone of the settings


# --- the operator's view -----------------------------------------------------------------------


def test_the_operator_sees_exports_and_resets_peoples_choices(make_settings, tmp_path):
    from click.testing import CliRunner

    from digest.cli import main

    settings = make_settings()
    with Store(settings.database) as store:
        now = day(0)
        store.save_choices(
            "grace@example.org", "Grace Hopper", "csv",
            {"topics": ["large language model"], "frequency": "weekly", "weekday": 2,
             "paused_until": date(2025, 12, 1), "abstracts": "none"}, now,
        )  # fmt: skip
        store.add_signup("n" * 22, "web@example.org", "Web Person", ["graph neural network"], now)
        store.confirm_signup("n" * 22, now)
        store.add_signup("m" * 22, "pending@example.org", "", ["graph neural network"], now)
        store.suppress("alan@example.org", "unsubscribed", now)
    runner = CliRunner()
    config = ["--config", str(settings.path), "subscribers"]
    listing = runner.invoke(main, config).output.splitlines()
    # topic 3 (Large Language Model), weekly on Wednesdays; the pause is over by now
    assert ["grace@example.org", "active", "csv", "weekly", "Wed", "3"] in (
        row.split() for row in listing
    )
    assert any(row.split()[:2] == ["alan@example.org", "unsubscribed"] for row in listing)
    assert ["web@example.org", "active", "web", "daily", "2"] in (row.split() for row in listing)
    assert not any("pending@example.org" in row for row in listing)  # not confirmed
    exported = tmp_path / "everyone.csv"
    assert runner.invoke(main, [*config, "--export", str(exported)]).exit_code == 0
    rows = exported.read_text().splitlines()
    assert rows[0] == "email,name,keywords,source,schedule,paused_until,abstracts,status"
    assert (
        '"grace@example.org","Grace Hopper","Large Language Model","csv","weekly on Wednesday",'
        '"2025-12-01","none","active"' in rows
    )  # every cell quoted (OWASP's advice for CSV a spreadsheet opens)
    assert len(rows) == 1 + 4  # ada, alan, grace, and the web sign-up
    result = runner.invoke(main, [*config, "--reset", "grace@example.org"])
    assert result.exit_code == 0 and "their own choices are forgotten" in result.output
    listing = runner.invoke(main, config).output
    assert ["grace@example.org", "active", "csv", "daily", "1,3"] in (
        row.split() for row in listing.splitlines()
    )
    assert runner.invoke(main, [*config, "--reset", "ada@example.org"]).exit_code == 1


def test_a_new_web_subscriber_who_goes_weekly_gets_every_day_since(make_settings, fake_arxiv):
    settings = changed(make_settings(subscribers="email,name,keywords\n"), first_run_days=10_000)
    run_once(settings, clock=lambda: day(0))
    with Store(settings.database) as store:
        store.add_signup("w" * 22, "wendy@example.org", "Wendy", ["graph neural network"], day(0))
        store.confirm_signup("w" * 22, day(0))
        assert store.person("wendy@example.org").last_cycle is not None  # starts from now
        store.save_choices(
            "wendy@example.org", "Wendy", "web",
            {"topics": ["graph neural network"], "frequency": "weekly", "weekday": 2}, day(0),
        )  # fmt: skip
        assert store.person("wendy@example.org").last_cycle is not None


async def test_a_daily_reader_with_choices_gets_the_same_email_as_one_without(
    alan, fake_arxiv, mail_server
):
    settings, base, client = alan
    form = {"csrf": csrf("alan@example.org"), "topic": "graph neural network"}
    await post(client, base + link("alan@example.org"), form | {"frequency": "daily"})
    for n in (1, 2):
        mail_server.handler.received.clear()
        gnn_news(fake_arxiv, n)
        await cycle(settings, day(n))
        html = mail_server.received[0].message.get_body(("html",)).get_content()
        assert "since" not in html.split("<h2", 1)[0]  # "for <day>", not "since yesterday"
        assert "View in your browser" in html
