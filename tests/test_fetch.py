"""arXiv fetching against a faulty fake API: politeness, retries, deadlines, hostile answers."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest
from helpers.builders import changed, make_paper
from helpers.fake_arxiv import FakeArxiv, dribble, hang, huge, redirect, status
from helpers.mailserver import free_port

from digest.config import Keyword
from digest.fetch import Fetched, FetchError, FetchWindow, fetch_keywords

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
WHEN = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
DIFFUSION, GNN, LLM = (
    "Diffusion Model for Recommendation",
    "Graph Neural Network",
    "Large Language Model",
)


def gaps(fake) -> list[float]:
    """Return the time between consecutive requests' arrivals."""
    times = [r.time for r in fake.requests]
    return [b - a for a, b in itertools.pairwise(times)]


def fetch(settings, *keywords: str | Keyword, since=EPOCH, had_papers=False, stop=None):
    """Fetch keywords (back to `since`); return each one's Fetched or FetchError by name."""
    outcomes: dict[str, Fetched | FetchError] = {}
    jobs = [
        (k if isinstance(k, Keyword) else Keyword(k), FetchWindow(since, had_papers))
        for k in keywords
    ]
    fetch_keywords(settings.arxiv, jobs, lambda k, o: outcomes.__setitem__(k.name, o), stop)
    return outcomes


def papers_of(outcome) -> list[str]:
    assert isinstance(outcome, Fetched), outcome
    return [p.id for p in outcome.papers]


@pytest.mark.slow
def test_requests_are_spaced_one_at_a_time_paged_and_name_the_operator(make_settings, fake_arxiv):
    settings = changed(
        make_settings(), arxiv_delay_seconds=0.1, arxiv_page_size=3, arxiv_contact="ops@example.org"
    )
    outcomes = fetch(settings, "Graph", "Diffusion", "Language")
    assert [len(papers_of(o)) for o in outcomes.values()] == [9, 8, 6]
    assert len(fake_arxiv.requests) == 3 + 3 + 2  # paged by 3, each page its own request
    assert min(gaps(fake_arxiv)) >= 0.1
    assert fake_arxiv.max_concurrent == 1
    assert {r.query["start"] for r in fake_arxiv.requests} == {"0", "3", "6"}
    assert {r.query["sortBy"] for r in fake_arxiv.requests} == {"lastUpdatedDate"}
    agents = {r.user_agent for r in fake_arxiv.requests}
    assert len(agents) == 1 and agents.pop().startswith("digest/")
    assert "ops@example.org" in fake_arxiv.requests[0].user_agent


def test_paging_stops_at_the_window(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_page_size=2)
    newest = sorted(fake_arxiv.papers, key=lambda p: p.updated, reverse=True)
    graph = [p for p in newest if "graph" in (p.title + p.abstract).lower()]
    since = graph[2].updated  # the third newest: the second page reaches it
    (outcome,) = fetch(settings, "Graph", since=since).values()
    assert papers_of(outcome) == [p.id for p in graph[:4]]
    assert len(fake_arxiv.requests) == 2


@pytest.mark.parametrize(
    "fault",
    [
        status(503),
        status(500),
        "non_xml",
        "truncated",
        "drop",
        pytest.param(hang(5), marks=pytest.mark.slow),  # the 0.5 s deadline, waited out
        pytest.param(dribble(0.3), marks=pytest.mark.slow),
        pytest.param(huge(60), marks=pytest.mark.slow),  # 60 MB
        pytest.param(status(429, retry_after=1), marks=pytest.mark.slow),  # 1 s
    ],
)
def test_each_transient_fault_is_retried(make_settings, fake_arxiv, fault):
    settings = changed(make_settings(), arxiv_timeout=0.5)
    fake_arxiv.script = [fault]
    (outcome,) = fetch(settings, GNN).values()
    assert len(papers_of(outcome)) == 7
    assert [r.action for r in fake_arxiv.requests][1] == "ok"
    if fault == status(429, retry_after=1):
        assert gaps(fake_arxiv)[0] >= 1.0  # Retry-After is honoured


@pytest.mark.slow
def test_a_dribbling_answer_fails_within_the_deadline_and_only_its_keyword(
    make_settings, fake_arxiv
):
    settings = changed(make_settings(), arxiv_timeout=1.0, arxiv_max_retries=0)
    fake_arxiv.script = [dribble(0.2)]  # about 10 KB at 5 bytes a second: 30 minutes
    started = time.monotonic()
    outcomes = fetch(settings, GNN, LLM)
    assert time.monotonic() - started < 3
    assert str(outcomes[GNN]) == (
        "arXiv did not answer within the 1 s deadline; gave up after 1 tries"
    )
    assert len(papers_of(outcomes[LLM])) == 6


@pytest.mark.slow
def test_a_stop_interrupts_the_request_in_flight(make_settings, fake_arxiv):
    import threading

    settings = changed(make_settings(), arxiv_timeout=60.0)
    fake_arxiv.script = [dribble(2)]
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    outcomes = fetch(settings, GNN, LLM, stop=stop)
    assert time.monotonic() - started < 2
    assert str(outcomes[GNN]) == "stopped while fetching"
    assert str(outcomes[LLM]) == "not fetched: stopping"


def test_a_body_over_the_size_bound_is_refused(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_max_retries=0, arxiv_timeout=30.0)
    fake_arxiv.script = [huge(200, content_length=False)]
    (outcome,) = fetch(settings, GNN).values()
    assert str(outcome) == "arXiv's answer is larger than 50 MB; refused; gave up after 1 tries"


def test_a_redirect_to_another_host_is_not_followed(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_max_retries=3)
    with FakeArxiv(list(fake_arxiv.papers)) as elsewhere:
        fake_arxiv.script = [redirect(elsewhere.url.replace("127.0.0.1", "localhost"))]
        outcomes = fetch(settings, GNN, LLM)
        assert elsewhere.requests == []
    assert str(outcomes[GNN]).startswith(
        "arXiv's answer redirects to 'localhost:" + elsewhere.url.split(":")[2].split("/")[0]
    )
    assert "not followed (check [arxiv] api_url" in str(outcomes[GNN])
    assert str(outcomes[LLM]).startswith("not fetched: arXiv's answer redirects")
    assert len(fake_arxiv.requests) == 1


def test_a_redirect_on_the_same_host_is_followed_and_spaced(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_delay_seconds=0.2)
    fake_arxiv.script = [redirect("/api/query?search_query=all:graph&max_results=50", 301)]
    (outcome,) = fetch(settings, GNN).values()
    assert len(papers_of(outcome)) == 9  # the redirect's own query: all:graph, 9 papers
    assert [r.action for r in fake_arxiv.requests] == ["redirect", "ok"]
    assert gaps(fake_arxiv)[0] >= 0.2


def test_an_error_feed_with_http_400_is_not_retried_and_shows_arxivs_message(
    make_settings, fake_arxiv
):
    settings = make_settings()
    (outcome,) = fetch(settings, Keyword("Broken", query="ti:((")).values()
    assert isinstance(outcome, FetchError)
    assert str(outcome).startswith("arXiv rejected the query: Invalid query string")
    assert str(outcome).endswith("(check this keyword's query)")
    assert [r.status for r in fake_arxiv.requests] == [400]


def test_an_error_feed_with_http_200_is_an_error_not_an_empty_result(make_settings, fake_arxiv):
    settings = make_settings()
    fake_arxiv.script = ["error_feed"]
    (outcome,) = fetch(settings, GNN).values()
    assert str(outcome) == "arXiv reported an error: simulated error"
    assert len(fake_arxiv.requests) == 1  # not retried: the query itself is wrong


def test_a_400_without_a_feed_is_not_retried(make_settings, fake_arxiv):
    settings = make_settings()
    fake_arxiv.script = [status(400)]
    (outcome,) = fetch(settings, GNN).values()
    assert str(outcome) == "arXiv answered HTTP 400"
    assert len(fake_arxiv.requests) == 1


@pytest.mark.slow
def test_retries_are_bounded_per_keyword_and_per_run(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_max_retries=2)  # 3 tries a keyword, 6 retries a run
    fake_arxiv.script = [status(503)] * 100
    outcomes = fetch(settings, DIFFUSION, GNN, LLM, "Transformer")
    assert all("HTTP 503; gave up after" in str(o) for o in outcomes.values())
    # 3 tries each while the run's 6 retries last, then one try each for the rest.
    assert len(fake_arxiv.requests) == 3 + 3 + 3 + 1


def test_when_arxiv_cannot_be_reached_the_other_keywords_are_not_tried(make_settings):
    settings = changed(
        make_settings(),
        arxiv_api_url=f"http://127.0.0.1:{free_port()}/api/query",  # nobody listens
        arxiv_max_retries=2,
        arxiv_delay_seconds=0.05,
    )
    started = time.monotonic()
    outcomes = fetch(settings, DIFFUSION, GNN, LLM)
    assert time.monotonic() - started < 2  # no backing off hard from a closed door
    first = str(outcomes[DIFFUSION])
    assert first.startswith("cannot connect to arXiv (") and "gave up after 3 tries" in first
    assert str(outcomes[GNN]) == str(outcomes[LLM]) == f"not fetched: {first}"


@pytest.mark.slow
def test_empty_answers_for_a_keyword_that_had_papers(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_max_retries=2)
    fake_arxiv.script = ["empty"]
    assert papers_of(fetch(settings, GNN)[GNN]) == []  # a new keyword may be empty
    fake_arxiv.script = ["empty", "ok"]
    assert len(papers_of(fetch(settings, GNN, had_papers=True)[GNN])) == 7  # suspect: retried
    fake_arxiv.script = ["empty"] * 3
    outcome = fetch(settings, GNN, had_papers=True)[GNN]
    assert "no papers for a keyword that had papers before" in str(outcome)


def test_an_empty_page_in_the_middle_is_retried(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_page_size=3)
    fake_arxiv.script = ["ok", "empty", "ok", "ok"]
    (outcome,) = fetch(settings, "Graph").values()
    assert len(papers_of(outcome)) == 9
    assert [r.query["start"] for r in fake_arxiv.requests] == ["0", "3", "3", "6"]


def test_the_bound_stops_a_runaway_query_and_says_so(make_settings, fake_arxiv):
    settings = changed(make_settings(), arxiv_page_size=2, arxiv_max_papers=5)
    (outcome,) = fetch(settings, "Graph").values()
    assert isinstance(outcome, Fetched) and outcome.truncated
    assert len(outcome.papers) == 5
    assert [r.query["max_results"] for r in fake_arxiv.requests] == ["2", "2", "1"]


def test_entries_that_cannot_be_read_are_skipped_and_counted(make_settings, fake_arxiv):
    fake_arxiv.papers.append(
        make_paper("2511.90001", "Graph Neural Network odd", WHEN, xml={"id": None})
    )
    (outcome,) = fetch(make_settings(), GNN).values()
    assert len(papers_of(outcome)) == 7 and outcome.skipped == ["an entry has no <id>"]
