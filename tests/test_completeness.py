"""Every new paper, once: busy days, downtime, late announcements, hostile answers, stops."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.builders import SECRET, changed, make_paper, settings_text
from helpers.cycles import ALAN, DAY1
from helpers.fake_arxiv import busy_papers, dribble, huge, status

import digest.arxiv_feed
from digest.pipeline import queries, run_once
from digest.store import Store

DAY2 = DAY1 + timedelta(days=1)
DIFFUSION, GNN, LLM = (
    "Diffusion Model for Recommendation",
    "Graph Neural Network",
    "Large Language Model",
)


def at(moment: datetime):
    return lambda: moment


def seen(settings, keyword: str) -> set[str]:
    with Store(settings.database) as store:
        return {
            row[0]
            for row in store.db.execute(
                "SELECT paper_id FROM seen WHERE keyword = ?", [keyword.casefold()]
            )
        }


def text_of(mail_server, address: str) -> str:
    (message,) = mail_server.by_recipient()[address]
    return message.get_body(("plain",)).get_content()


def result(report, name: str):
    return next(k for k in report.keywords if k.keyword == name)


def requests_per_keyword(fake) -> collections.Counter[str]:
    return collections.Counter(r.query["search_query"] for r in fake.requests)


@pytest.mark.parametrize("count", [180, pytest.param(1500, marks=pytest.mark.slow)])
def test_a_busy_day_records_and_mails_every_new_paper(
    make_settings, fake_arxiv, mail_server, count
):
    settings = make_settings(subscribers=ALAN)
    run_once(settings, clock=at(DAY1))
    busy = busy_papers(count, GNN, newest=DAY2 - timedelta(hours=1), spacing=timedelta(seconds=30))
    fake_arxiv.papers += busy
    fake_arxiv.requests.clear()
    report = run_once(settings, clock=at(DAY2))
    gnn = result(report, GNN)
    assert gnn.new == [p.id for p in busy] and gnn.limit is None
    assert {p.id for p in busy} <= seen(settings, GNN)
    pages = -(-(count + 7) // 500)  # 500 a page, until the page that reaches older papers
    gnn_query = next(q for q in requests_per_keyword(fake_arxiv) if "Graph" in q)
    assert requests_per_keyword(fake_arxiv)[gnn_query] == pages
    text = text_of(mail_server, "alan@example.org")
    assert f"{count} new papers" in text and f"{GNN} ({count})" in text


@pytest.mark.slow
def test_after_five_days_down_the_next_cycle_finds_everything_in_between(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings(subscribers=ALAN)
    run_once(settings, clock=at(DAY1))
    back = DAY1 + timedelta(days=5)
    # 150 papers a day while the daemon was down: more than one page.
    gap = busy_papers(750, GNN, newest=back - timedelta(hours=1), spacing=timedelta(minutes=9))
    fake_arxiv.papers += gap
    report = run_once(settings, clock=at(back))
    assert sorted(result(report, GNN).new) == sorted(p.id for p in gap)
    assert "750 new papers" in text_of(mail_server, "alan@example.org")


def test_a_paper_announced_late_is_still_found_and_mailed_once(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings(subscribers=ALAN)
    run_once(settings, clock=at(DAY1))
    with Store(settings.database) as store:
        watermark = store.keyword_states(queries(settings))[GNN.casefold()].watermark
    late = make_paper("2511.60001", "Graph Neural Network, announced late", watermark)
    fake_arxiv.papers += [
        late.replace(updated=watermark - timedelta(days=2)),  # two days older than the newest
        make_paper("2511.60002", "Graph Neural Network today", DAY2 - timedelta(hours=2)),
    ]
    report = run_once(settings, clock=at(DAY2))
    assert result(report, GNN).new == ["2511.60002", "2511.60001"]
    assert "announced late" in text_of(mail_server, "alan@example.org")
    mail_server.handler.received.clear()
    report = run_once(settings, clock=at(DAY2 + timedelta(days=1)))
    assert result(report, GNN).new == [] and mail_server.received == []


def test_a_quiet_keyword_costs_one_request_per_cycle(make_settings, fake_arxiv, mail_server):
    settings = make_settings()
    run_once(settings, clock=at(DAY1))
    for day in (2, 3):
        fake_arxiv.requests.clear()
        report = run_once(settings, clock=at(DAY1 + timedelta(days=day - 1)))
        assert report.ok and report.planned == 0
        assert sorted(requests_per_keyword(fake_arxiv).values()) == [1, 1, 1]


def test_a_quiet_day_sends_nothing_and_moves_the_archive_date(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings()
    run_once(settings, clock=at(DAY1))
    before = settings.archive.read_text()
    mail_server.handler.received.clear()
    with caplog.at_level(logging.INFO):
        report = run_once(settings, clock=at(DAY2))
    assert report.ok and report.planned == 0 and mail_server.received == []
    for name in (DIFFUSION, GNN, LLM):
        assert f"{name}: no new papers" in caplog.text
    after = settings.archive.read_text()
    assert after.replace("Last update: 2025-11-17", "Last update: 2025-11-16") == before


def test_the_bound_is_reported_in_the_log_the_summary_the_health_and_the_email(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = changed(make_settings(subscribers=ALAN), arxiv_max_papers=50, arxiv_page_size=20)
    run_once(settings, clock=at(DAY1))
    fake_arxiv.papers += busy_papers(180, GNN, newest=DAY2 - timedelta(hours=1))
    with caplog.at_level(logging.WARNING):
        report = run_once(settings, clock=at(DAY2))
    warning = (
        f"arXiv had more than 50 new papers for {GNN}; only the newest 50 were fetched: "
        "narrow the keyword (or raise [arxiv] max_papers)"
    )
    assert warning in caplog.text
    assert len(result(report, GNN).new) == 50
    assert f"{GNN}: 50 fetched, 50 new, LIMIT REACHED (more than 50 papers" in report.summary()
    with Store(settings.database) as store:
        assert store.last_cycle()["warnings"] == [warning]
    text = " ".join(text_of(mail_server, "alan@example.org").split())
    assert f"arXiv had more than 50 new papers for {GNN} today" in text


def test_a_malformed_query_shows_arxivs_message_and_costs_one_request(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings(extra='\n[[keywords]]\nname = "Broken"\nquery = "ti:(("\n')
    with caplog.at_level(logging.ERROR):
        report = run_once(settings, clock=at(DAY1))
    message = "arXiv rejected the query: Invalid query string: 'ti:(('"
    assert message in caplog.text and message in report.summary()
    broken = [r for r in fake_arxiv.requests if r.query["search_query"] == "ti:(("]
    assert [r.status for r in broken] == [400]
    with Store(settings.database) as store:
        assert message in store.last_cycle()["errors"]["Broken"]
    assert [k.keyword for k in report.keywords if not k.failed] == [DIFFUSION, GNN, LLM]


def test_an_unexpected_error_fails_its_keyword_only(
    make_settings, fake_arxiv, mail_server, monkeypatch
):
    settings = make_settings(subscribers=ALAN.replace("Graph Neural Network", ""))
    run_once(settings, clock=at(DAY1))
    mail_server.handler.received.clear()
    fake_arxiv.papers += [
        make_paper("2511.70001", "Graph Neural Network bug", DAY2 - timedelta(hours=1)),
        make_paper("2511.70002", "Large Language Model news", DAY2 - timedelta(hours=1)),
    ]
    real = digest.arxiv_feed.to_paper

    def buggy(fields, raw_id):
        if "2511.70001" in raw_id:
            raise RuntimeError("a bug nobody foresaw")
        return real(fields, raw_id)

    monkeypatch.setattr(digest.arxiv_feed, "to_paper", buggy)
    report = run_once(settings, clock=at(DAY2))
    assert not report.ok
    assert result(report, GNN).error == "unexpected error: RuntimeError: a bug nobody foresaw"
    assert "2511.70001" not in seen(settings, GNN)  # nothing of it is marked seen
    assert result(report, LLM).new == ["2511.70002"]
    assert "Large Language Model news" in text_of(mail_server, "alan@example.org")
    assert "Last update: 2025-11-17" in settings.archive.read_text()


@pytest.mark.slow
def test_mixed_faults_skip_one_keyword_and_mark_nothing_of_it(
    make_settings, fake_arxiv, mail_server
):
    settings = changed(make_settings(), arxiv_max_retries=2, arxiv_delay_seconds=0.05)
    run_once(settings, clock=at(DAY1))
    for n, title in enumerate([f"{DIFFUSION} today", f"{GNN} today", f"{LLM} today"]):
        fake_arxiv.papers.append(make_paper(f"2511.4000{n}", title, DAY1 + timedelta(hours=14)))
    mail_server.handler.received.clear()
    fake_arxiv.requests.clear()
    # Diffusion: empty three times (suspect, skipped); GNN: 429 then fine; LLM: HTML then fine.
    script = ["empty", "empty", "empty", status(429, retry_after=1), "ok", "non_xml", "ok"]
    fake_arxiv.script = list(script)
    report = run_once(settings, clock=at(DAY2))
    assert not report.ok
    assert [k.keyword for k in report.keywords if k.failed] == [DIFFUSION]
    assert [r.action for r in fake_arxiv.requests] == [
        "empty", "empty", "empty", "status", "ok", "non_xml", "ok"
    ]  # fmt: skip
    times = [r.time for r in fake_arxiv.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.05 and gaps[3] >= 1.0
    assert "2511.40000" not in seen(settings, DIFFUSION)  # nothing of the failed keyword
    with Store(settings.database) as store:
        assert store.last_cycle()["failed_keywords"] == [DIFFUSION]
    assert sorted(mail_server.by_recipient()) == [
        "ada@example.org", "alan@example.org", "grace@example.org"
    ]  # fmt: skip
    grace = text_of(mail_server, "grace@example.org")
    assert f"{LLM} today" in grace and f"{DIFFUSION} today" not in grace
    # The next cycle gets the skipped keyword's paper: nothing was lost.
    mail_server.handler.received.clear()
    assert run_once(settings, clock=at(DAY2 + timedelta(hours=1))).ok
    assert f"{DIFFUSION} today" in text_of(mail_server, "grace@example.org")


# --- `digest once` as a real process: signals and memory ----------------------------------------


def write_settings(tmp_path: Path, fake, mail_server, **kwargs) -> dict[str, str]:
    (tmp_path / "settings.toml").write_text(
        settings_text(api_url=fake.url, smtp_port=mail_server.port, **kwargs)
    )
    (tmp_path / "subscribers.csv").write_text(ALAN)
    return {**os.environ, "DIGEST_CONFIG": str(tmp_path / "settings.toml"), "DIGEST_SECRET": SECRET}


def once(env: dict[str, str]) -> tuple[int, str, float]:
    """Run `digest once`; return its exit code, its log and its peak RSS in MB.

    The peak is the child's own VmHWM, sampled until it exits: its rusage would count the
    memory of this test process, which the child shares until it execs.
    """
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "digest", "once"], env=env, stderr=log)
        status = Path(f"/proc/{process.pid}/status")
        peak = 0
        while process.poll() is None:
            with contextlib.suppress(OSError):  # it may exit between poll() and the read
                found = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                peak = max(peak, int(found[1])) if found else peak
            time.sleep(0.005)  # a sampling period, not a wait for an event
        log.seek(0)
        return process.returncode, log.read(), peak / 1024


@pytest.mark.slow
def test_sigterm_during_a_dribbling_answer_ends_once_promptly_and_loses_nothing(
    fake_arxiv, mail_server, tmp_path
):
    env = write_settings(tmp_path, fake_arxiv, mail_server)
    assert once(env)[0] == 0
    fresh = make_paper("2511.80001", "Graph Neural Network fresh", datetime.now(UTC))
    fake_arxiv.papers.append(fresh.replace(updated=datetime.now(UTC) - timedelta(minutes=5)))
    fake_arxiv.requests.clear()
    fake_arxiv.script = ["ok", dribble(2)]  # the second keyword (GNN) dribbles
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "once"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not any(r.action == "dribble" for r in fake_arxiv.requests):
        assert time.monotonic() < deadline and process.poll() is None, "never reached GNN"
        time.sleep(0.02)
    time.sleep(0.3)  # a few bytes in
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) in (0, 1)
    assert time.monotonic() - started < 10
    with process.stderr:
        log = process.stderr.read()
    assert "stopped while fetching" in log and "Traceback" not in log
    assert mail_server.received == []
    # Nothing lost: the next cycle mails the paper the interrupted one did not record.
    assert once(env)[0] == 0
    assert "Graph Neural Network fresh" in text_of(mail_server, "alan@example.org")


@pytest.mark.slow
def test_hostile_answers_keep_memory_bounded_and_fail_or_trim_only_what_they_must(
    fake_arxiv, mail_server, tmp_path
):
    env = write_settings(tmp_path, fake_arxiv, mail_server)
    now = datetime.now(UTC)
    fake_arxiv.papers += [
        make_paper(
            "2511.90001", "Large Language Model epic", now, xml={"summary": "w " * 5_000_000}
        ),
        make_paper("2511.90002", "Large Language Model undated", now, xml={"updated": "?"}),
    ]
    # Diffusion: a 200 MB answer, twice (max_retries = 1); the others answer normally.
    fake_arxiv.script = [huge(200, content_length=False), huge(200, content_length=False)]
    code, log, peak = once(env)
    assert code == 1  # partial: one keyword failed
    assert "arXiv's answer is larger than 50 MB; refused" in log and "Traceback" not in log
    assert peak < 150, f"peak RSS {peak:.0f} MB"
    with Store(tmp_path / "digest.db") as store:
        epic = store.papers(["2511.90001", "2511.90002"])
    assert len(epic["2511.90001"].abstract) <= 10_000 and epic["2511.90001"].abstract.endswith("]")
    assert epic["2511.90002"].updated == epic["2511.90002"].published  # the readable date
