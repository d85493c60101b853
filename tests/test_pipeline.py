"""The whole cycle against the fake arXiv and a real SMTP server, day after day."""

from __future__ import annotations

import mailbox
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers.builders import DATA, SECRET, changed, make_paper
from helpers.cycles import DAY1, papers_in

from digest.pipeline import run_once
from digest.store import Store
from digest.tokens import manage_token, unsubscribe_token

DAY2 = DAY1 + timedelta(days=1)
ABS = "https://arxiv.org/abs/"


def clock(moment: datetime):
    return lambda: moment


def day2_papers(fake) -> None:
    """Add day 2's news: one paper for two keywords, a GNN one, an LLM one, a new version."""
    morning = DAY2 - timedelta(hours=10)
    fake.papers += [
        make_paper(
            "2511.20001",
            "A Graph Neural Network Diffusion Model for Recommendation",
            morning + timedelta(hours=1),
        ),
        make_paper(
            "2511.20002",
            "Graph Neural Network Compression",
            morning,
            comment="Accepted at <ICLR> | 2026 & beyond, camera-ready",
        ),
        make_paper("2511.20003", "Large Language Model Routing", morning),
    ]
    old = next(p for p in fake.papers if p.id == "2501.10548")
    fake.papers.remove(old)
    fake.papers.append(old.replace(version=4, updated=morning, title=old.title + " (revised)"))


def test_three_days_no_flood_then_exact_news_then_nothing(make_settings, fake_arxiv, mail_server):
    settings = make_settings()

    # Day 1: the history is empty; only papers of the last two days are mailed.
    report = run_once(settings, clock=clock(DAY1))
    assert report.ok
    assert {k.keyword: len(k.new) for k in report.keywords} == {
        "Diffusion Model for Recommendation": 1,
        "Graph Neural Network": 0,
        "Large Language Model": 0,
    }
    got = mail_server.by_recipient()
    assert sorted(got) == ["ada@example.org", "grace@example.org"]
    assert [papers_in(m) for m in got["ada@example.org"]] == [["2511.12114"]]
    with Store(settings.database) as store:
        assert len(store.recent_papers("graph neural network", 100)) > 3  # recorded, not mailed
    archive_day1 = settings.archive.read_text()

    # Day 2: new papers; one matches two keywords, one is a new version of an old paper.
    day2_papers(fake_arxiv)
    mail_server.handler.received.clear()
    report = run_once(settings, clock=clock(DAY2))
    assert report.ok and report.delivery.sent == 3
    got = mail_server.by_recipient()
    # Which papers each got (their order within a section is the ranking's: test_ranking).
    assert {who: [sorted(papers_in(m)) for m in msgs] for who, msgs in got.items()} == {
        "ada@example.org": [["2511.20001", "2511.20002", "2511.20003"]],
        "alan@example.org": [["2511.20001", "2511.20002"]],
        "grace@example.org": [["2511.20001", "2511.20003"]],
    }
    ada = got["ada@example.org"][0]
    text = ada.get_body(("plain",)).get_content()
    assert "== Diffusion Model for Recommendation (1) ==" in text
    assert "Also in: Graph Neural Network" in text
    assert "2501.10548" not in text  # a new version is not news
    archive_day2 = settings.archive.read_text()
    assert archive_day2 != archive_day1
    assert (
        f"[Diffusion Models in Recommendation Systems: A Survey (revised)]({ABS}2501.10548v4)"
        in archive_day2
    )

    # Day 2 again: nothing new, no mail, the archive is the same.
    mail_server.handler.received.clear()
    report = run_once(settings, clock=clock(DAY2 + timedelta(hours=1)))
    assert report.ok and report.delivery.sent == 0 and report.planned == 0
    assert mail_server.received == []
    assert settings.archive.read_text() == archive_day2


def test_message_headers_and_parts(make_settings, fake_arxiv, mail_server):
    settings = make_settings()
    run_once(settings, clock=clock(DAY1))
    (grace,) = mail_server.by_recipient()["grace@example.org"]
    token = unsubscribe_token(SECRET.encode(), "grace@example.org")
    assert grace["From"] == "Daily Papers <papers@example.org>"
    assert grace["To"] == "Grace Hopper <grace@example.org>"
    assert grace["Subject"] == "1 new · Diffusion Model for Recommendation"
    assert grace["List-Id"] == "Daily Papers <daily-papers.example.org>"
    assert grace["List-Unsubscribe"] == f"<https://papers.example.org/unsubscribe?token={token}>"
    assert grace["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<[^@>]+@example\.org>", grace["Message-ID"])
    assert grace["Date"]
    assert grace.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in grace.iter_parts()] == ["text/plain", "text/html"]
    text = grace.get_body(("plain",)).get_content()
    html = grace.get_body(("html",)).get_content()
    view = "https://papers.example.org/days/2025-11-16/"
    view += "diffusion-model-for-recommendation+large-language-model"
    assert text.startswith(
        f"Daily Papers · Sunday 16 November 2025\r\nView in your browser: {view}\r\n\r\n"
        "Hello Grace Hopper,"
    )
    assert f'<a href="{view}">View in your browser</a>' in html
    manage = manage_token(SECRET.encode(), "grace@example.org", 0)
    page = f"https://papers.example.org/unsubscribe?token={token}&manage={manage}"
    assert page in text  # the body's link brings the page its manage link (not the header's)
    assert f'href="{page.replace("&", "&amp;")}"' in html
    assert "Continuous-time Discrete-space Diffusion Model for Recommendation" in html
    assert (
        f'href="{ABS}2511.12114v1"' in html and 'href="https://arxiv.org/pdf/2511.12114v1"' in html
    )
    assert "Accepted by WSDM 2026" in html and "cs.IR" in html
    assert "<style>@media all {" in html and 'style="' in html  # the frame inlined, once


def test_archive_rows_match_the_reference_exactly(make_settings, fake_arxiv):
    settings = make_settings(smtp=False)
    run_once(settings, clock=clock(DAY1))
    lines = settings.archive.read_text().splitlines()
    # The reference archive's rows, and hand-written rows with '|', '<', '&', LaTeX norms and a
    # long comment, all went through the fake API's Atom, the library, the store and back.
    for name in ("archive-sample-rows.md", "archive-tricky-rows.md"):
        for expected in (DATA / name).read_text().splitlines():
            assert expected in lines
    assert lines.count("## Diffusion Model for Recommendation") == 1


def test_without_smtp_mail_goes_to_the_maildir(make_settings, fake_arxiv, tmp_path: Path):
    settings = make_settings(smtp=False)
    report = run_once(settings, clock=clock(DAY1))
    assert report.delivery.sent == 2
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    recipients = sorted(message["To"] for message in box)
    assert recipients == ["Ada Lovelace <ada@example.org>", "Grace Hopper <grace@example.org>"]


def test_a_failing_keyword_is_skipped_and_marks_nothing(make_settings, fake_arxiv, mail_server):
    from helpers.fake_arxiv import status

    settings = make_settings()
    # The first keyword's two tries (max_retries = 1) get a 503; the others answer.
    fake_arxiv.script = [status(503), status(503)]
    report = run_once(settings, clock=clock(DAY1))
    assert not report.ok
    failed = [k.keyword for k in report.keywords if k.failed]
    assert failed == ["Diffusion Model for Recommendation"]
    with Store(settings.database) as store:
        assert store.recent_papers("diffusion model for recommendation", 100) == []
        assert store.recent_papers("graph neural network", 100)
    assert mail_server.received == []  # the only fresh paper was the failed keyword's
    # Next day it answers: its papers come in as a first run, with no flood.
    report = run_once(settings, clock=clock(DAY1 + timedelta(hours=2)))
    assert report.ok
    assert sorted(mail_server.by_recipient()) == ["ada@example.org", "grace@example.org"]


@pytest.mark.parametrize("first_run_days", [0, 600])
def test_first_run_days_bounds_the_first_digest(
    make_settings, fake_arxiv, mail_server, first_run_days
):
    settings = make_settings(extra="", keywords=("Graph Neural Network",))
    settings = changed(settings, first_run_days=first_run_days)
    report = run_once(settings, clock=clock(DAY1))
    (result,) = report.keywords
    assert (len(result.new) > 0) is (first_run_days == 600)
