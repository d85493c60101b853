"""Delete my data: the CSV row counts for nothing, check lists it, the page says what remains."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET, changed, make_paper

from digest.cli import main
from digest.pipeline import run_once
from digest.readers import readers
from digest.store import Store
from digest.tokens import form_token, token_id
from digest.web import ENDPOINT, make_app

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)
GNN = "Graph Neural Network"
ADA, ALAN = f"ada@example.org,Ada Lovelace,{GNN}\n", f"alan@example.org,Alan Turing,{GNN}\n"
CSV = f"email,name,keywords\n{ADA}{ALAN}"
BASE = "https://papers.example.org"


def day(n: int) -> datetime:
    return DAY1 + timedelta(days=n)


def manage_link(message) -> str:
    text = message.get_body(("plain",)).get_content()
    (url,) = set(re.findall(rf"{BASE}(/manage\?token=[\w.-]+)", text))
    return url


def cli(settings, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["-c", str(settings.path), *args], env={"DIGEST_SECRET": SECRET}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def delete(settings, message, email: str) -> str:
    """Press "Delete my data" on a person's page, from the manage link of their digest."""
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: day(0)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    path = manage_link(message).replace("/manage?", "/manage/delete?")
    csrf = form_token(SECRET.encode(), "manage", token_id(SECRET.encode(), email))
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(str(server.make_url(path)), data={"csrf": csrf}) as answer,
        ):
            assert answer.status == 200
            return " ".join((await answer.text()).split())
    finally:
        await server.close()


async def test_a_deleted_persons_row_is_ignored_and_listed_by_check(
    make_settings, fake_arxiv, mail_server
):
    settings = changed(make_settings(subscribers=CSV), first_run_days=10_000)
    await asyncio.to_thread(run_once, settings, clock=lambda: day(0))
    mailed = mail_server.by_recipient()
    assert sorted(mailed) == ["ada@example.org", "alan@example.org"]
    assert "remove these rows" not in cli(settings, "check")
    page = await delete(settings, mailed["alan@example.org"][0], "alan@example.org")
    assert "Your data is deleted" in page and "What remains, and where" in page
    assert 'id="row"' in page and "subscriber file of the list's owner" in page
    assert "a•••@example.org" in page and "never mailed again" in page
    with Store(settings.database) as store:
        assert [r.email for r in readers(settings, store)] == ["ada@example.org"]
    listing = cli(settings, "subscribers")
    (ada,) = [line for line in listing.splitlines() if "ada@example.org" in line]
    (alan,) = [line for line in listing.splitlines() if "alan@example.org" in line]
    assert ada.split()[:2] == ["ada@example.org", "active"] and " csv " in ada
    assert alan.split()[1] == "deleted" and alan.split()[-4:] == ["-", "not", "listed", "-"]
    check = cli(settings, "check")
    assert (
        f"warning: {settings.subscribers}: remove these rows: they asked for their data to be "
        "deleted: line 3 alan@example.org"
    ) in check
    mail_server.handler.received.clear()
    fake_arxiv.papers.append(make_paper("2511.60001", f"{GNN} news", day(1) - timedelta(hours=10)))
    report = await asyncio.to_thread(run_once, settings, clock=lambda: day(1))
    assert report.planned == 1 and sorted(mail_server.by_recipient()) == ["ada@example.org"]


async def test_the_page_names_no_row_for_someone_the_list_does_not_hold(
    make_settings, fake_arxiv, mail_server
):
    settings = changed(make_settings(subscribers=CSV), first_run_days=10_000)
    await asyncio.to_thread(run_once, settings, clock=lambda: day(0))
    ada = mail_server.by_recipient()["ada@example.org"][0]
    settings.subscribers.write_text(f"email,name,keywords\n{ALAN}")
    page = await delete(settings, ada, "ada@example.org")
    assert "Your data is deleted" in page and 'id="remains"' in page
    assert 'id="row"' not in page and "subscriber file" not in page
    assert "remove these rows" not in cli(settings, "check")
