"""[arxiv] harvest: whole categories paged to the watermark, kept in the history, never mailed."""

from __future__ import annotations

import collections
import json
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET, make_paper
from helpers.cycles import ALAN, DAY1, GNN, cycle
from helpers.fake_arxiv import busy_papers, status

from digest.cli import main
from digest.config import ConfigError, load_settings
from digest.pipeline import run_once
from digest.store import Store
from digest.web import make_app

DAY2 = DAY1 + timedelta(days=1)


def at(moment: datetime):
    return lambda: moment


def with_harvest(make_settings, entries: str, subscribers: str = ALAN):
    """Make settings, then add `harvest = entries` to their [arxiv] section and load them."""
    settings = make_settings(subscribers=subscribers)
    text = settings.path.read_text(encoding="utf-8")
    settings.path.write_text(
        text.replace("[arxiv]\n", f"[arxiv]\nharvest = {entries}\n"), encoding="utf-8"
    )
    return load_settings(settings.path)


def requests_for(fake, query: str) -> int:
    return collections.Counter(r.query["search_query"] for r in fake.requests)[query]


def seen(settings, key: str, news: bool | None = None) -> set[str]:
    where = "" if news is None else f" AND news = {int(news)}"
    with Store(settings.database) as store:
        return {
            row[0]
            for row in store.db.execute(
                f"SELECT paper_id FROM seen WHERE keyword = ?{where}", [key]
            )
        }


def result(report, name: str):
    return next(k for k in report.keywords if k.keyword == name)


@pytest.mark.slow
def test_a_busy_category_day_is_paged_to_the_watermark_kept_and_never_mailed(
    make_settings, fake_arxiv, mail_server
):
    settings = with_harvest(make_settings, '["cs.LG"]')
    old = busy_papers(600, "Old news", newest=DAY1 - timedelta(days=10), prefix="2510")
    recent = [
        make_paper(f"2511.9000{i}", f"Recent harvest {i}", DAY1 - timedelta(hours=2 + i))
        for i in range(5)
    ]
    fake_arxiv.papers[:] = recent + old  # cs.LG only: the fixture papers stay out of the count
    first = run_once(settings, clock=at(DAY1))
    assert first.ok and requests_for(fake_arxiv, "cat:cs.LG") == 1  # the window ends on page 1
    assert {p.id for p in recent} <= seen(settings, "harvest:cs.lg")

    newest, spacing = DAY2 - timedelta(hours=1), timedelta(seconds=30)
    day = busy_papers(1490, "Harvest day", newest=newest, spacing=spacing)
    wanted = make_paper("2511.80000", f"{GNN} for harvests", DAY2 - timedelta(minutes=30))
    fake_arxiv.papers += [wanted, *day]
    fake_arxiv.requests.clear()
    mail_server.handler.received.clear()
    report = run_once(settings, clock=at(DAY2))

    # 1,491 new + the 5 recent papers inside the 1-day overlap come first; the page of 2,000
    # (a harvest's) ends among papers older than the window, so paging stops there.
    assert requests_for(fake_arxiv, "cat:cs.LG") == 1
    harvest = result(report, "harvest:cs.LG")
    assert harvest.fetched == 2000 and len(harvest.new) == 1491 and harvest.limit is None
    assert "harvest:cs.LG: 2000 fetched, 1491 new" in report.summary()
    with Store(settings.database) as store:
        assert "harvest:cs.LG: 2000 fetched, 1491 new" in store.last_cycle()["summary"]
        assert len(store.papers(p.id for p in day)) == 1490  # in the history, with their text
        state = store.keyword_states({"harvest:cs.lg": "cat:cs.LG"})["harvest:cs.lg"]
        assert state.watermark == wanted.updated  # its own watermark, for the next cycle
    kept = seen(settings, "harvest:cs.lg")
    assert {p.id for p in day} | {wanted.id} <= kept
    assert seen(settings, "harvest:cs.lg", news=True) == set()  # no day page, feed or archive

    # the keyword that also found one harvested paper mails it, once; nothing else is mailed
    assert report.ok and report.planned == 1
    (message,) = mail_server.by_recipient()["alan@example.org"]
    text = message.get_body(("plain",)).get_content()
    assert text.count(f"{GNN} for harvests") == 1 and "Harvest day" not in text
    assert len(mail_server.received) == 1
    archive = settings.archive.read_text(encoding="utf-8")
    assert f"{GNN} for harvests" in archive
    assert "Harvest day" not in archive and "Recent harvest" not in archive
    assert "harvest:" not in archive


@pytest.mark.slow
def test_a_quiet_harvest_costs_one_request_per_entry_and_a_whole_archive_works(
    make_settings, fake_arxiv, mail_server
):
    settings = with_harvest(make_settings, '["stat.ML", "cs"]', subscribers="email,name,keywords\n")
    run_once(settings, clock=at(DAY1))
    fixture = {p.id for p in fake_arxiv.papers}
    assert seen(settings, "harvest:cs") == fixture  # cs.IR and cs.LG papers, by the archive
    stat = {p.id for p in fake_arxiv.papers if "stat.ML" in p.categories}
    assert stat and seen(settings, "harvest:stat.ml") == stat
    for day in (2, 3):
        fake_arxiv.requests.clear()
        report = run_once(settings, clock=at(DAY1 + timedelta(days=day - 1)))
        assert report.ok and report.planned == 0
        assert requests_for(fake_arxiv, "cat:stat.ML") == 1
        assert requests_for(fake_arxiv, "cat:cs OR cat:cs.*") == 1
        summary = report.summary()
        assert "harvest:cs: " in summary
        assert f"harvest:stat.ML: {len(stat)} fetched, 0 new" in summary


def test_a_failing_harvest_fails_alone_and_marks_nothing(make_settings, fake_arxiv, mail_server):
    settings = with_harvest(make_settings, '["cs.IR"]')
    fake_arxiv.script = ["ok", "ok", "ok", status(400)]  # the three keywords, then the harvest
    report = run_once(settings, clock=at(DAY1))
    harvest = result(report, "harvest:cs.IR")
    assert harvest.failed and not report.ok
    assert seen(settings, "harvest:cs.ir") == set()
    assert result(report, GNN).error is None and seen(settings, GNN.casefold())  # fetched as ever
    with Store(settings.database) as store:
        assert store.last_cycle()["failed_keywords"] == ["harvest:cs.IR"]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ('["cs.IR", "cs LG"]', "'cs LG' is not an arXiv category"),
        ('["cs.IR", "cs.IR"]', "'cs.IR' is listed twice"),
        ('"cs.IR"', "expected a list of strings"),
        ('["cat:cs.IR"]', "'cat:cs.IR' is not an arXiv category"),
    ],
)
def test_a_bad_harvest_entry_is_a_settings_error(make_settings, entries, problem):
    with pytest.raises(ConfigError) as caught:
        with_harvest(make_settings, entries)
    (line,) = caught.value.problems
    assert line.startswith("settings.toml:") and f"[arxiv] harvest: {problem}" in line


def test_a_keyword_may_not_take_a_harvest_key(make_settings):
    settings = make_settings()
    text = settings.path.read_text(encoding="utf-8") + '\n[[keywords]]\nname = "Harvest:cs.LG"\n'
    settings.path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="names beginning with 'harvest:' are kept"):
        load_settings(settings.path)


def test_check_lists_the_harvest_entries(make_settings, fake_arxiv, tmp_path: Path):
    settings = with_harvest(make_settings, '["cs.IR", "stat"]')
    out = CliRunner().invoke(
        main, ["--config", str(settings.path), "check"], env={"DIGEST_SECRET": SECRET}
    )
    assert "2 harvest entr(y/ies), kept and not mailed:" in out.output
    assert "harvest:cs.IR: cat:cs.IR" in out.output
    assert "harvest:stat: cat:stat OR cat:stat.*" in out.output


async def test_healthz_shows_the_harvest_counts(make_settings, fake_arxiv, mail_server):
    settings = with_harvest(make_settings, '["stat.ML"]')
    await cycle(settings, DAY1)
    stat = sum("stat.ML" in p.categories for p in fake_arxiv.papers)
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(str(server.make_url("/healthz"))) as answer,
        ):
            health = json.loads(await answer.text())
    finally:
        await server.close()
    assert answer.status == 200
    assert f"harvest:stat.ML: {stat} fetched, 0 new" in health["last_cycle"]["summary"]
