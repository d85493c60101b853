"""arXiv fetching against a faulty fake API: politeness, retries, suspect empty answers."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest
from conftest import changed, make_paper
from fake_arxiv import hang, status

from digest.config import Keyword
from digest.fetch import Fetcher, FetchError
from digest.pipeline import run_once
from digest.store import Store

DAY1 = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
DIFFUSION, GNN, LLM = (
    "Diffusion Model for Recommendation",
    "Graph Neural Network",
    "Large Language Model",
)


def gaps(fake) -> list[float]:
    """Return the time between consecutive requests' arrivals."""
    times = [r.time for r in fake.requests]
    return [b - a for a, b in itertools.pairwise(times)]


def fetcher(settings, **changes) -> Fetcher:
    return Fetcher(changed(settings, **changes).arxiv)


def test_requests_are_spaced_one_at_a_time_and_name_the_operator(make_settings, fake_arxiv):
    settings = make_settings(extra="")
    settings = changed(
        settings, arxiv_delay_seconds=0.2, arxiv_page_size=3, arxiv_contact="ops@example.org"
    )
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok
    fetched = [k.fetched for k in report.keywords]
    assert fetched == [8, 7, 6]
    pages = sum(-(-n // 3) for n in fetched)  # paged by 3, each page its own request
    assert len(fake_arxiv.requests) == pages == 8
    assert min(gaps(fake_arxiv)) >= 0.2
    assert fake_arxiv.max_concurrent == 1
    starts = {r.query["start"] for r in fake_arxiv.requests}
    assert starts == {"0", "3", "6"}
    agents = {r.user_agent for r in fake_arxiv.requests}
    assert len(agents) == 1 and agents.pop().startswith("digest/")
    assert "ops@example.org" in fake_arxiv.requests[0].user_agent


@pytest.mark.parametrize(
    "fault",
    [
        status(503),
        status(500),
        "non_xml",
        "truncated",
        "drop",
        hang(5),
        status(429, retry_after=1),
    ],
)
def test_each_transient_fault_is_retried(make_settings, fake_arxiv, fault):
    settings = make_settings()
    fake_arxiv.script = [fault]
    papers = fetcher(settings, arxiv_timeout=0.5).fetch(Keyword(GNN))
    assert len(papers) == 7
    assert [r.action for r in fake_arxiv.requests][1] == "ok"
    if isinstance(fault, type(status(429))) and fault.retry_after:
        assert gaps(fake_arxiv)[0] >= 1.0  # Retry-After is honoured


def test_an_error_feed_is_an_error_not_an_empty_result(make_settings, fake_arxiv):
    settings = make_settings()
    fake_arxiv.script = ["error_feed"]
    with pytest.raises(FetchError, match="arXiv reported an error: simulated error"):
        fetcher(settings).fetch(Keyword(GNN))
    assert len(fake_arxiv.requests) == 1  # not retried: the query itself is wrong


def test_a_400_is_not_retried(make_settings, fake_arxiv):
    settings = make_settings()
    fake_arxiv.script = [status(400)]
    with pytest.raises(FetchError, match="HTTP 400"):
        fetcher(settings).fetch(Keyword(GNN))
    assert len(fake_arxiv.requests) == 1


def test_retries_are_bounded_per_keyword_and_per_run(make_settings, fake_arxiv):
    settings = make_settings()
    fake_arxiv.script = [status(503)] * 100
    client = fetcher(settings, arxiv_max_retries=2)  # 3 tries a keyword, 6 retries a run
    for name in (DIFFUSION, GNN, LLM, "Transformer"):
        with pytest.raises(FetchError, match="HTTP 503; gave up after"):
            client.fetch(Keyword(name))
    # 3 tries each while the run's 6 retries last, then one try each for the rest.
    assert len(fake_arxiv.requests) == 3 + 3 + 3 + 1


def test_empty_answers_for_a_keyword_that_had_papers(make_settings, fake_arxiv):
    settings = make_settings()
    client = fetcher(settings, arxiv_max_retries=2)
    fake_arxiv.script = ["empty"]
    assert client.fetch(Keyword(GNN), had_papers=False) == []  # a new keyword may be empty
    fake_arxiv.script = ["empty", "ok"]
    assert len(client.fetch(Keyword(GNN), had_papers=True)) == 7  # suspect: retried
    fake_arxiv.script = ["empty"] * 3
    with pytest.raises(FetchError, match="no papers for a keyword that had papers before"):
        client.fetch(Keyword(GNN), had_papers=True)


def day2_news(fake) -> None:
    when = DAY1 + timedelta(hours=14)
    for n, title in enumerate([f"{DIFFUSION} today", f"{GNN} today", f"{LLM} today"]):
        fake.papers.append(make_paper(f"2511.4000{n}", title, when))


def test_mixed_faults_skip_one_keyword_and_mark_nothing_of_it(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = changed(make_settings(), arxiv_max_retries=2, arxiv_delay_seconds=0.05)
    run_once(settings, clock=lambda: DAY1)
    day2 = DAY1 + timedelta(days=1)
    day2_news(fake_arxiv)
    mail_server.handler.received.clear()
    fake_arxiv.requests.clear()
    # Diffusion: empty three times (suspect, skipped); GNN: 429 then fine; LLM: HTML then fine.
    fake_arxiv.script = [
        "empty",
        "empty",
        "empty",
        status(429, retry_after=1),
        "ok",
        "non_xml",
        "ok",
    ]
    report = run_once(settings, clock=lambda: day2)
    assert not report.ok
    assert [k.keyword for k in report.keywords if k.failed] == [DIFFUSION]
    assert [r.action for r in fake_arxiv.requests] == [
        "empty",
        "empty",
        "empty",
        "status",
        "ok",
        "non_xml",
        "ok",
    ]
    assert min(gaps(fake_arxiv)) >= 0.05 and gaps(fake_arxiv)[3] >= 1.0
    with Store(settings.database) as store:
        seen = {
            row[0]
            for row in store.db.execute(
                "SELECT paper_id FROM seen WHERE keyword = ?", [DIFFUSION.casefold()]
            )
        }
        assert "2511.40000" not in seen  # nothing of the failed keyword was marked
        assert store.last_cycle()["failed_keywords"] == [DIFFUSION]
    got = mail_server.by_recipient()
    assert sorted(got) == ["ada@example.org", "alan@example.org", "grace@example.org"]
    grace = got["grace@example.org"][0].get_body(("plain",)).get_content()
    assert f"{LLM} today" in grace and f"{DIFFUSION} today" not in grace
    # The next cycle gets the skipped keyword's paper: nothing was lost.
    mail_server.handler.received.clear()
    report = run_once(settings, clock=lambda: day2 + timedelta(hours=1))
    assert report.ok
    grace = mail_server.by_recipient()["grace@example.org"][0].get_body(("plain",))
    assert f"{DIFFUSION} today" in grace.get_content()


def test_a_quiet_day_sends_nothing_and_moves_the_archive_date(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings()
    run_once(settings, clock=lambda: DAY1)
    before = settings.archive.read_text()
    mail_server.handler.received.clear()
    with caplog.at_level(logging.INFO):
        report = run_once(settings, clock=lambda: DAY1 + timedelta(days=1))
    assert report.ok and report.planned == 0 and mail_server.received == []
    for name in (DIFFUSION, GNN, LLM):
        assert f"{name}: no new papers" in caplog.text
    after = settings.archive.read_text()
    assert after.replace("Last update: 2025-11-17", "Last update: 2025-11-16") == before
