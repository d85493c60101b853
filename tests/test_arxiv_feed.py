"""Reading arXiv's Atom answers: the reference client agrees, hostile entries are contained."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import arxiv
import pytest
from helpers.builders import DATA, make_paper
from helpers.fake_arxiv import render_error_feed, render_feed

from digest.arxiv_feed import CUT, LIMITS, MAX_AUTHORS, FeedError, PageParser, error_message
from digest.models import collapse, split_id

SAMPLE = (DATA / "arxiv-api-sample.xml").read_bytes()
WHEN = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)


def parse(body: bytes, chunk: int = 1 << 16):
    parser = PageParser()
    for start in range(0, len(body), chunk):
        parser.feed(body[start : start + chunk])
    return parser.close()


def feed_of(*papers) -> bytes:
    return render_feed(list(papers), {"search_query": "all:study", "max_results": "100"})


def test_the_sample_reads_as_the_reference_client_reads_it():
    page = parse(SAMPLE)
    reference = arxiv._feed.parse(SAMPLE)  # the arxiv library, the reference reader
    assert page.total == reference.header.total_results == 11
    assert page.entries == len(page.papers) == len(reference.results) == 3
    for ours, theirs in zip(page.papers, reference.results, strict=True):
        assert (ours.id, ours.version) == split_id(theirs.get_short_id())
        assert ours.title == collapse(theirs.title) and ours.abstract == collapse(theirs.summary)
        assert ours.authors == tuple(a.name for a in theirs.authors)
        assert (ours.updated, ours.published) == (theirs.updated, theirs.published)
        assert ours.comment == theirs.comment and ours.doi == theirs.doi
        assert ours.primary_category == theirs.primary_category
        assert ours.categories == tuple(theirs.categories)


def test_byte_by_byte_reads_the_same_as_all_at_once():
    assert parse(SAMPLE, chunk=1) == parse(SAMPLE)


def test_fields_longer_than_any_real_paper_are_cut_with_a_marker():
    giant = make_paper(
        "2511.00001",
        "A study",
        WHEN,
        authors=[f"Author {i}" for i in range(MAX_AUTHORS + 7)],
        xml={"summary": "word " * 2_000_000, "title": "T" * 50_000},  # 10 MB, 50 KB
    )
    (paper,) = parse(feed_of(giant)).papers
    assert len(paper.abstract) <= LIMITS["abstract"] and paper.abstract.endswith(CUT)
    assert paper.abstract.startswith("word word")
    assert len(paper.title) <= LIMITS["title"] and paper.title.endswith(CUT)
    assert len(paper.authors) == MAX_AUTHORS + 1 and paper.authors[-1] == "and 7 more"


def test_an_unreadable_entry_is_skipped_and_named_the_rest_kept(caplog):
    good = make_paper("2511.00001", "A good study", WHEN)
    one_bad_date = make_paper("2511.00002", "A study", WHEN, xml={"updated": "not a date"})
    no_dates = make_paper(
        "2511.00003", "A study", WHEN, xml={"updated": "soon", "published": "later"}
    )
    no_id = make_paper("2511.00004", "A study", WHEN, xml={"id": None})
    hostile = make_paper(
        "2511.00005", "A study", WHEN, xml={"id": "http://arxiv.org/abs/x)](http://evil)v1"}
    )
    with caplog.at_level(logging.WARNING):
        page = parse(feed_of(good, one_bad_date, no_dates, no_id, hostile))
    assert [p.id for p in page.papers] == ["2511.00001", "2511.00002"]
    assert page.papers[1].updated == WHEN  # its other date stands in
    assert page.entries == 5 and len(page.skipped) == 3
    assert "2511.00003: neither <updated> nor <published> is a date" in page.skipped[0]
    assert page.skipped[1] == "an entry has no <id>"
    assert "is not an arXiv id" in page.skipped[2]
    assert "skipping an entry of arXiv's answer: an entry has no <id>" in caplog.text


@pytest.mark.parametrize(
    ("body", "transient", "message"),
    [
        (render_error_feed({}, "incorrect id format for abc"), False, "incorrect id format"),
        (b"<html><body>502 Proxy Error</body></html>", True, "'html' document"),
        (b"oops & <b>", True, "not XML"),
        (SAMPLE[: len(SAMPLE) // 2], True, "not complete XML"),
        (b"", True, "not complete XML"),
    ],
)
def test_answers_that_are_not_result_feeds(body, transient, message):
    with pytest.raises(FeedError, match=message) as info:
        parse(body)
    assert info.value.transient is transient


def test_the_message_of_an_error_feed():
    assert error_message(render_error_feed({}, "max_results must be >= 0")) == (
        "max_results must be >= 0"
    )
    assert error_message(b"HTTP 400\n") is None
