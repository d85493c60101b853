"""Own topics: the syntax (what it reads, what it refuses) and matching over papers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers.builders import stored_paper
from hypothesis import given
from hypothesis import strategies as st

from digest.matching import Matcher
from digest.store import Store
from digest.store.corpus import DayCorpus, HistoryCorpus
from digest.topics import TopicError, check, from_keyword, parse, parse_lines

PAPERS = {
    p.id: p
    for p in (
        stored_paper(
            id="1", title="Graph neural networks for ranking", abstract="We rank with graphs.",
            authors=("Thomas Müller", "Ada Lovelace"), categories=("cs.IR", "cs.LG"),
        ),
        stored_paper(
            id="2", title="A survey of graph neural networks", abstract="A broad survey.",
            authors=("Jane Smith",), primary_category="cs.LG", categories=("cs.LG",),
        ),
        stored_paper(
            id="3", title="Dense retrieval at scale", abstract="Neural ranking of passages.",
            authors=("Given Surname", "Muller Thomas"), categories=("cs.IR",),
        ),
        stored_paper(
            id="4", title="Quantum error correction", abstract="Surface codes.",
            authors=("Alan Turing",), primary_category="quant-ph", categories=("quant-ph",),
        ),
    )
}  # fmt: skip


@pytest.fixture(scope="module")
def day():
    corpus = DayCorpus(PAPERS)
    yield Matcher(corpus)
    corpus.close()


@pytest.mark.parametrize(
    ("line", "ids"),
    [
        ("graph neural", {"1", "2"}),  # all words required
        ("network", {"1", "2"}),  # stemmed as the reading room's search: networks
        ('"neural networks"', {"1", "2"}),
        ('"networks neural"', set()),  # a phrase keeps its order
        ("graph -survey", {"1"}),
        ('graph -"broad survey"', {"1"}),
        ("au:Muller", {"1", "3"}),  # accents optional
        ("au:müller", {"1", "3"}),
        ('au:"Thomas Muller"', {"1"}),  # in this order, within one author
        ('au:"Ada Turing"', set()),  # not across two authors
        ("cat:cs.IR", {"1", "3"}),
        ("cat:CS.ir ranking", {"1", "3"}),
        ("cat:cs", {"1", "2", "3"}),  # a whole archive
        ("cat:quant-ph OR au:smith", {"2", "4"}),
        ("retrieval OR survey -broad", {"3"}),  # OR: each side keeps its own exclusions
        ("ranking -cat:cs.LG", {"3"}),
        ("graph-neural", {"1", "2"}),  # punctuation splits words as the index does
    ],
)
def test_matching(day, line, ids):
    assert set(day.match(parse(line))) == ids


def test_identical_queries_match_once():
    matcher = Matcher(DayCorpus(PAPERS))
    a, b = parse("neural  graph"), parse("GRAPH neural")
    assert a.key == b.key and a.line != b.line
    assert {k: set(v) for k, v in matcher.match_all([a, b]).items()} == {a.key: {"1", "2"}}
    assert len(matcher.queries) == 1 and len(matcher.terms) == 2


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('"graph neural', "quote is not closed"),
        ("au:", "au: needs something after it"),
        ('au:""', "au: needs something after it"),
        ("cat:", "cat: needs something after it"),
        ("xx:foo", "unknown field xx:"),
        ("-survey -review", "not only exclusions"),
        ("graph OR -survey", "not only exclusions"),
        ("OR graph", "OR needs something"),
        ("graph OR", "OR needs something"),
        ("graph OR OR neural", "OR needs something"),
        ("-", "- needs a word"),
        ("cat:cs/IR", "is not an arXiv category"),
        ("%%%", "no letters or digits"),
        ("x " * 101, "at most 200 characters"),
        (" ".join(f"w{i}" for i in range(13)), "at most 12 terms"),
    ],
)
def test_refused(line, says):
    with pytest.raises(TopicError, match=says):
        parse(line)


def test_lines_numbered_as_shown():
    topics, errors = parse_lines('graph\n\n"open\nau:Muller\ngraph\n', limit=20)
    assert [t.line for t in topics] == ["graph", "au:Muller"]  # blank and repeated lines dropped
    assert [(e.line, e.text) for e in errors] == [(3, '"open')]
    assert str(errors[0]).startswith("line 3 ('\"open'): a quote is not closed")
    _, errors = parse_lines("a\nb\nc", limit=2)
    assert "at most 2 topics" in str(errors[0])
    assert [e.line for e in check(["fine", "au:", "ok"])] == [2]


def test_local_keyword(day):
    topic = from_keyword("Neural Networks", ["cs.IR", "cs.LG"], ["survey"])
    assert day.match(topic) == ("1",)


@given(st.text(max_size=80))
def test_any_line_parses_or_is_refused_clearly(line):
    try:
        topic = parse(line)
    except TopicError as exc:
        assert exc.message and str(exc) == exc.message
        return
    assert topic.clauses and all(c.wanted for c in topic.clauses)
    assert parse(topic.key).key == topic.key  # the canonical form reads back as itself


def test_history_counts_recent_arrivals(tmp_path):
    store = Store(tmp_path / "d.db")
    now = datetime(2026, 11, 30, tzinfo=UTC)
    store.record_papers(PAPERS.values())
    with store.transaction():
        store.record_arrivals(["1", "2", "3"], 1, now - timedelta(days=2))
        store.record_arrivals(["4", "1"], 2, now - timedelta(days=40))  # 1 keeps its first
    assert store.unarrived(["1", "4", "5"]) == {"5"}
    assert store.arrivals_in(2) == ["4"]
    recent = Matcher(HistoryCorpus(store, now - timedelta(days=30)))
    assert set(recent.match(parse("graph"))) == {"1", "2"}
    assert set(recent.match(parse("au:Muller"))) == {"1", "3"}
    assert set(recent.match(parse('au:"Thomas Muller"'))) == {"1"}
    assert set(recent.match(parse("cat:cs"))) == {"1", "2", "3"}
    assert set(recent.match(parse("cat:quant-ph OR au:turing"))) == set()  # 4 arrived 40 days ago
