"""What a harvest costs arXiv: a busy category's day in at most 3 requests, a quiet one in 1,
faults handled as for keywords (the watermark stays, the next cycle takes it all), its own bound."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers.builders import SECRET, changed, make_paper, settings_text, stored_paper
from helpers.cycles import ALAN, DAY1, GNN
from helpers.fake_arxiv import FakeArxiv, busy_papers, hang, status
from helpers.mailserver import MailServer

from digest.config import ConfigError, load_settings
from digest.pipeline import run_once
from digest.planning import queries
from digest.store import Store

DAY2 = DAY1 + timedelta(days=1)
SPACING = timedelta(seconds=55)  # 1,500 papers in about 23 hours
BUSY, QUIET = "cat:cs.LG", "cat:stat.ML"


def harvesting(make_settings, arxiv: str = ""):
    """Return settings with one keyword (GNN) and harvest = ["cs.LG", "stat.ML"], plus arxiv."""
    settings = make_settings(subscribers=ALAN, keywords=(GNN,))
    text = settings.path.read_text(encoding="utf-8")
    lines = f'[arxiv]\nharvest = ["cs.LG", "stat.ML"]\n{arxiv}'
    settings.path.write_text(text.replace("[arxiv]\n", lines), encoding="utf-8")
    return load_settings(settings.path)


def asked(fake, query: str) -> list[dict[str, str]]:
    """Return the query strings of the requests the fake arXiv received for a query."""
    return [r.query for r in fake.requests if r.query.get("search_query") == query]


def result(report, name: str):
    return next(k for k in report.keywords if k.keyword == name)


def watermark(settings, key: str) -> datetime | None:
    with Store(settings.database) as store:
        return store.keyword_states(queries(settings))[key].watermark


def seen(settings, key: str) -> set[str]:
    with Store(settings.database) as store:
        rows = store.db.execute("SELECT paper_id FROM seen WHERE keyword = ?", [key])
        return {row[0] for row in rows}


def quiet_papers() -> list:
    return [
        make_paper(f"2511.7000{i}", f"Quiet statistics {i}", DAY1 - timedelta(hours=5 + i),
                   primary_category="stat.ML", categories=["stat.ML"])
        for i in range(3)
    ]  # fmt: skip


YESTERDAY = busy_papers(1500, "Yesterday", DAY1 - timedelta(hours=1), SPACING, "2511")
OLDER = busy_papers(1000, "Older", DAY1 - timedelta(days=4), prefix="2510")
TODAY = busy_papers(1500, "Today", DAY2 - timedelta(hours=1), SPACING, "2512")


def write_settings(folder: Path, api_url: str, smtp_port: int):
    """Write and load the settings of harvesting() in folder, for these servers."""
    text = settings_text(api_url=api_url, smtp_port=smtp_port, keywords=(GNN,))
    text = text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG", "stat.ML"]\n')
    (folder / "settings.toml").write_text(text, encoding="utf-8")
    (folder / "subscribers.csv").write_text(ALAN, encoding="utf-8")
    return load_settings(folder / "settings.toml")


@pytest.fixture(scope="module")
def day_one(tmp_path_factory) -> Path:
    """Harvest a busy cs.LG (1,500 papers yesterday, 1,000 older) and a quiet stat.ML on DAY1,
    once for the module; return the folder of its settings and database."""
    folder = tmp_path_factory.mktemp("harvest")
    with (
        FakeArxiv([*quiet_papers(), *YESTERDAY, *OLDER]) as fake,
        MailServer() as mail,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("DIGEST_SECRET", SECRET)
        settings = write_settings(folder, fake.url, mail.port)
        first = run_once(settings, clock=lambda: DAY1)
    assert first.ok and len(result(first, "harvest:cs.LG").new) == 1500
    assert [r.query["search_query"] for r in fake.requests].count(BUSY) == 1
    assert watermark(settings, "harvest:cs.lg") == YESTERDAY[0].updated
    return folder


@pytest.fixture
def busy_day(day_one, tmp_path, fake_arxiv, mail_server, monkeypatch):
    """A copy of day_one's database, with 1,500 more cs.LG papers for DAY2: (settings, them)."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    folder = shutil.copytree(day_one, tmp_path / "harvest")
    fake_arxiv.papers[:] = [*quiet_papers(), *YESTERDAY, *OLDER, *TODAY]
    return write_settings(folder, fake_arxiv.url, mail_server.port), TODAY


@pytest.mark.slow
def test_a_busy_day_costs_two_requests_and_a_quiet_category_one(busy_day, fake_arxiv, caplog):
    settings, today = busy_day
    caplog.set_level(logging.INFO, "digest.planning")
    report = run_once(settings, clock=lambda: DAY2)
    assert report.ok
    # 1,500 new papers, then the day before the watermark again (1,500 more): two pages of
    # 2,000, the second reaching older papers. Keywords keep their pages of 500.
    pages = asked(fake_arxiv, BUSY)
    assert [(p["start"], p["max_results"]) for p in pages] == [("0", "2000"), ("2000", "2000")]
    assert len(asked(fake_arxiv, QUIET)) == 1
    assert fake_arxiv.requests[0].query["max_results"] == "500"  # the keyword's
    busy = result(report, "harvest:cs.LG")
    assert (busy.fetched, len(busy.new), busy.limit) == (4000, 1500, None)  # max_papers: 2000
    assert set(busy.new) == {p.id for p in today}
    assert "harvest:cs.LG: 4000 fetched, 1500 new" in report.summary()
    assert "harvest:stat.ML: 3 fetched, 0 new" in report.summary()
    assert watermark(settings, "harvest:cs.lg") == today[0].updated
    assert {p.id for p in today} <= seen(settings, "harvest:cs.lg")
    # page 2 ends among older papers that DAY1's page did not reach: kept, and the log says
    # which bound to raise if such papers were late announcements
    assert (
        "harvest:cs.LG: 500 unseen papers updated before 2025-11-15 recorded without mailing "
        "(raise [arxiv] harvest_overlap_days" in caplog.text
    )

    fake_arxiv.requests.clear()  # a day without announcements: one page reaches the overlap
    quiet = run_once(settings, clock=lambda: DAY2 + timedelta(days=1))
    assert len(asked(fake_arxiv, BUSY)) == 1 and len(asked(fake_arxiv, QUIET)) == 1
    assert len(result(quiet, "harvest:cs.LG").new) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("faults", "timeout"),
    [([status(503), status(503)], 5.0), ([hang(30), status(503, retry_after=0)], 2.0)],
    ids=["503-twice", "timeout-then-503"],
)
def test_a_fault_mid_paging_moves_nothing_and_the_next_cycle_takes_it_all(
    busy_day, fake_arxiv, faults, timeout
):
    settings, today = busy_day
    settings = changed(settings, arxiv_timeout=timeout)  # the deadline of a whole answer
    mark = watermark(settings, "harvest:cs.lg")
    # the keyword's page, cs.LG's first page, then its second fails on each try (max_retries 1)
    fake_arxiv.script = ["ok", "ok", *faults]
    report = run_once(settings, clock=lambda: DAY2)
    busy = result(report, "harvest:cs.LG")
    assert busy.failed and "HTTP 503" in busy.error and "gave up after 2 tries" in busy.error
    assert not report.ok and result(report, "harvest:stat.ML").error is None  # it fails alone
    assert len(asked(fake_arxiv, BUSY)) == 3
    assert watermark(settings, "harvest:cs.lg") == mark  # nothing moved, nothing marked seen
    assert not {p.id for p in today} & seen(settings, "harvest:cs.lg")
    with Store(settings.database) as store:
        assert store.last_cycle()["failed_keywords"] == ["harvest:cs.LG"]
        assert not store.papers(p.id for p in today)  # not even page 1's papers

    fake_arxiv.requests.clear()
    again = run_once(settings, clock=lambda: DAY2 + timedelta(hours=1))
    busy = result(again, "harvest:cs.LG")
    assert again.ok and set(busy.new) == {p.id for p in today}  # nothing lost
    assert len(asked(fake_arxiv, BUSY)) == 2
    assert watermark(settings, "harvest:cs.lg") == today[0].updated


@pytest.mark.slow
def test_a_fault_retried_within_the_cycle_costs_one_more_request(busy_day, fake_arxiv):
    settings, today = busy_day
    fake_arxiv.script = ["ok", "ok", status(503, retry_after=0)]
    report = run_once(settings, clock=lambda: DAY2)
    assert report.ok and set(result(report, "harvest:cs.LG").new) == {p.id for p in today}
    assert [r.status for r in fake_arxiv.requests if r.query["search_query"] == BUSY] == [
        200, 503, 200
    ]  # fmt: skip
    assert watermark(settings, "harvest:cs.lg") == today[0].updated


def test_a_category_past_its_bound_is_cut_and_says_so(make_settings, fake_arxiv, mail_server):
    settings = harvesting(make_settings, "max_papers = 5\nharvest_max_papers = 50\n")
    day = busy_papers(120, "Crowded", DAY1 - timedelta(hours=1), SPACING)
    topic = [
        make_paper(f"2511.6000{i}", f"{GNN} {i}", DAY1 - timedelta(hours=2 + i),
                   categories=["cs.IR"])
        for i in range(8)
    ]  # fmt: skip
    fake_arxiv.papers[:] = [*quiet_papers(), *day, *topic]
    report = run_once(settings, clock=lambda: DAY1)
    busy = result(report, "harvest:cs.LG")
    assert (busy.fetched, busy.limit) == (50, 50) and busy.new == [p.id for p in day[:50]]
    assert [p["max_results"] for p in asked(fake_arxiv, BUSY)] == ["50"]  # one request
    assert (
        "harvest:cs.LG: 50 fetched, 50 new, LIMIT REACHED (more than 50 papers; "
        "raise [arxiv] harvest_max_papers)" in report.summary()
    )
    warning = "only the newest 50 were fetched: raise [arxiv] harvest_max_papers"
    with Store(settings.database) as store:  # what /healthz shows
        assert [w for w in store.last_cycle()["warnings"] if w.endswith(warning)]
    assert result(report, "harvest:stat.ML").limit is None  # 3 papers: under either bound
    keyword = result(report, GNN)  # the keywords keep max_papers, and say so as before
    assert (keyword.fetched, keyword.limit) == (5, 5) and "narrow the keyword" in keyword.describe()


def test_the_harvest_bounds_default_and_are_checked(make_settings):
    arxiv = harvesting(make_settings).arxiv
    assert (arxiv.harvest_overlap_days, arxiv.harvest_max_papers) == (1.0, 10_000)
    assert (arxiv.overlap_days, arxiv.max_papers, arxiv.page_size) == (3.0, 2000, 500)
    bounds = arxiv.bounds("harvest:cs.lg")
    assert (bounds.page_size, bounds.max_papers, bounds.overlap_days) == (2000, 10_000, 1.0)
    assert arxiv.bounds(GNN.casefold()).page_size == 500


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("harvest_max_papers = 40000", "harvest_max_papers: must be at least 1 and 30000, got"),
        ("harvest_max_papers = 0", "harvest_max_papers: must be at least 1 and 30000, got 0"),
        ("harvest_overlap_days = -1", "harvest_overlap_days: must not be negative, got -1"),
        ('harvest_overlap_days = "1"', "harvest_overlap_days: expected a number, got str"),
    ],
)
def test_a_bad_harvest_bound_is_a_settings_error(make_settings, line, problem):
    with pytest.raises(ConfigError) as caught:
        harvesting(make_settings, line + "\n")
    (message,) = caught.value.problems
    assert message.startswith("settings.toml:") and f"[arxiv] {problem}" in message


def test_papers_read_again_unchanged_cost_no_write(tmp_path):
    papers = [stored_paper(id=f"2511.0000{i}", title=f"Paper {i}") for i in range(3)]
    with Store(tmp_path / "digest.db") as store:
        store.record_papers(papers)
        before = store.db.conn.total_changes
        store.record_papers(papers)  # the overlap, read again: nothing to write
        assert store.db.conn.total_changes == before
        doi = replace(papers[0], doi="10.1000/x")  # a DOI added without a new version
        newer = replace(papers[1], version=3, title="Paper 1, revised")
        store.record_papers([doi, newer, papers[1]])  # one answer can hold a paper twice
        stored = store.papers(p.id for p in papers)
        assert stored[doi.id] == doi and stored[newer.id] == newer
        assert store.search("revised", 5, 0) == ([newer], 1)  # the search index follows
