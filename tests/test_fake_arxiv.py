"""Tests of the fake arXiv API, read back through the real ``arxiv`` library and plain urllib."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC
from pathlib import Path
from urllib.parse import urlencode

import arxiv
import pytest
import requests
from fake_arxiv import FakeArxiv, FeedPaper, RequestRecord, hang, load_papers, status
from lxml import etree

DATA = Path(__file__).parent / "data" / "papers.json"
NS = {
    "a": "http://www.w3.org/2005/Atom",
    "os": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
}
DMR = '"Diffusion Model for Recommendation"'
GNN = '"Graph Neural Network"'
LLM = '"Large Language Model"'
DMR_IDS = ["2511.12114", "2403.08814", "2406.11235", "2409.05521", "2502.07730"]
GNN_IDS = ["2403.08814", "2401.06632", "2410.19873", "2412.03307", "cs/0112017", "2505.16021"]
GNN_IDS += ["2510.13456"]
LLM_IDS = ["2507.14402", "2404.02290", "2408.09911", "2503.21178", "2508.02245", "2510.13456"]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def papers() -> list[FeedPaper]:
    return load_papers(DATA)


@pytest.fixture
def fake(papers: list[FeedPaper]):
    with FakeArxiv(papers) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeArxiv):
    clients: list[arxiv.Client] = []

    def make(page_size: int = 100, num_retries: int = 0) -> arxiv.Client:
        client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=num_retries)
        client.query_url_format = f"{fake.url}?{{}}"
        client._session.trust_env = False
        clients.append(client)
        return client

    yield make
    for client in clients:
        client._session.close()


def run(client: arxiv.Client, query: str = "", **kwargs) -> list[arxiv.Result]:
    """Run a search through the arxiv library and collect every result."""
    kwargs.setdefault("max_results", None)
    return list(client.results(arxiv.Search(query, **kwargs)))


def short_ids(results: list[arxiv.Result]) -> list[str]:
    """Return the version-less ids of library results."""
    return [r.get_short_id().rsplit("v", 1)[0] for r in results]


def fetch(url: str, timeout: float = 5.0, **params: str) -> tuple[int, dict[str, str], bytes]:
    """GET the fake with plain urllib; return status, headers and body."""
    try:
        with _OPENER.open(f"{url}?{urlencode(params)}", timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def strict_xml(body: bytes) -> etree._Element:
    """Parse a body with a strict (non-recovering) XML parser."""
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False))


def wait_for(predicate, timeout: float = 5.0) -> None:
    """Poll until predicate() is true, failing after a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.005)


def collapse(text: str | None) -> str:
    return " ".join((text or "").split())


# --- fixtures and data model -----------------------------------------------------------------


def test_fixture_file_carries_the_tricky_cases(papers: list[FeedPaper]) -> None:
    ids = [p.id for p in papers]
    assert len(papers) == 20 and len(set(ids)) == 20
    assert {"2511.12114", "2501.10548", "2504.01541", "cs/0112017"} <= set(ids)
    comments = [p.comment for p in papers]
    assert any(c and len(c) > 20 for c in comments)
    assert any(c and len(c) == 20 for c in comments)
    assert any(c and len(c) < 10 for c in comments)
    assert comments.count(None) >= 3
    assert any(len(p.authors) == 12 for p in papers)
    abstracts = " ".join(p.abstract for p in papers)
    for needle in ("$|S_i|$", "<b>", " & ", "\\textit{", "\\|x\\|_2", "≈"):
        assert needle in abstracts
    titles = " ".join(p.title for p in papers)
    assert " | " in titles and "<script>" in titles
    for p in papers:
        assert p.published.tzinfo == UTC and p.updated.tzinfo == UTC
        assert 2024 <= p.published.year <= 2025 and p.updated >= p.published
        assert (p.version > 1) == (p.updated > p.published)
        assert 3 <= p.abstract.count(". ") + 1 <= 10


def test_feed_paper_dict_round_trip(papers: list[FeedPaper]) -> None:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    assert [p.to_dict() for p in papers] == raw
    assert [FeedPaper.from_dict(p.to_dict()) for p in papers] == papers
    assert papers[0].to_dict()["published"] == "2025-11-15T20:00:00Z"
    changed = papers[0].replace(version=2, title="Other")
    assert (changed.version, changed.title, changed.id) == (2, "Other", papers[0].id)
    assert papers[0].version == 1
    with pytest.raises(ValueError):
        FeedPaper.from_dict({**raw[0], "published": "2025-11-15T20:00:00"})


# --- the feed, read by the arxiv library -----------------------------------------------------


def test_library_parses_every_field(fake: FakeArxiv, make_client, papers) -> None:
    results = run(make_client(), id_list=[p.id for p in papers])
    assert len(results) == len(papers)
    for r, p in zip(results, papers, strict=True):
        assert r.get_short_id() == f"{p.id}v{p.version}"
        assert r.entry_id == f"http://arxiv.org/abs/{p.id}v{p.version}"
        assert r.title == p.title
        assert collapse(r.summary) == p.abstract
        assert r.summary.startswith("  ") and r.summary.endswith("\n")
        assert [a.name for a in r.authors] == p.authors
        assert r.comment == p.comment
        assert (r.journal_ref, r.doi) == (p.journal_ref, p.doi)
        assert r.primary_category == p.primary_category
        assert r.categories == p.categories
        assert r.pdf_url == f"http://arxiv.org/pdf/{p.id}v{p.version}"
        assert (r.published, r.updated) == (p.published, p.updated)
        assert r.published.tzinfo is not None


def test_entry_is_byte_identical_to_arxiv_sample(fake: FakeArxiv) -> None:
    expected = "\n".join(
        [
            "  <entry>",
            "    <id>http://arxiv.org/abs/2504.01541v2</id>",
            "    <updated>2025-04-10T20:00:00Z</updated>",
            "    <published>2025-03-01T20:00:00Z</published>",
            "    <title>Hyperbolic Diffusion Recommender Model</title>",
            "    <summary>  Diffusion models (DMs) have emerged as the new state-of-the-art family"
            " of deep",
            "  generative models. To gain deeper insights into the limitations of diffusion",
            "  models in recommender systems, we investigate the fundamental structural",
            "  disparities between images and items. Consequently, items often exhibit",
            "  distinct anisotropic and directional structures that are less prevalent in",
            "  images. However, the traditional forward diffusion process continuously adds",
            "  isotropic Gaussian noise, causing anisotropic signals to degrade into noise,",
            "  which impairs the semantically meaningful representations in recommender",
            "  systems. Inspired by the advancements in hyperbolic spaces, we propose a novel",
            r"  \textit{\textbf{H}yperbolic} \textit{\textbf{D}iffusion}",
            r"  \textit{\textbf{R}ecommender} \textit{\textbf{M}odel} (named HDRM). Unlike",
            "  existing directional diffusion methods based on Euclidean space, the intrinsic",
            "  non-Euclidean structure of hyperbolic space makes it particularly well-adapted",
            "  for handling anisotropic diffusion processes. In particular, we begin by",
            "  formulating concepts to characterize latent directed diffusion processes",
            "  within a geometrically grounded hyperbolic space. Subsequently, we propose a",
            "  novel hyperbolic latent diffusion process specifically tailored for users and",
            "  items. Drawing upon the natural geometric attributes of hyperbolic spaces, we",
            "  impose structural restrictions on the space to enhance hyperbolic diffusion",
            "  propagation, thereby ensuring the preservation of the intrinsic topology of",
            "  user-item graphs. Extensive experiments on three benchmark datasets",
            "  demonstrate the effectiveness of HDRM.",
            "</summary>",
            "    <author><name>Chen Silva</name></author><author><name>Ivan Kim</name></author>",
            "    ",
            '    <link href="http://arxiv.org/abs/2504.01541v2" rel="alternate" type="text/html"/>',
            '    <link title="pdf" href="http://arxiv.org/pdf/2504.01541v2" rel="related"'
            ' type="application/pdf"/>',
            '    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.IR"'
            ' scheme="http://arxiv.org/schemas/atom"/>',
            '    <category term="cs.IR" scheme="http://arxiv.org/schemas/atom"/>'
            '<category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>',
            "  </entry>",
            "</feed>",
            "",
        ]
    )
    code, headers, body = fetch(fake.url, search_query="ti:Hyperbolic")
    text = body.decode()
    assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
    assert text[text.index("  <entry>") :] == expected
    head = text[: text.index("  <entry>")].splitlines()
    assert head[0] == '<?xml version="1.0" encoding="UTF-8"?>'
    assert head[1] == '<feed xmlns="http://www.w3.org/2005/Atom">'
    assert head[2] == (
        '  <link href="http://arxiv.org/api/query?search_query=ti:Hyperbolic" rel="self"'
        ' type="application/atom+xml"/>'
    )
    assert head[3] == '  <title type="html">ArXiv Query: search_query=ti:Hyperbolic</title>'
    assert re.fullmatch(r"  <id>http://arxiv\.org/api/[\w-]+</id>", head[4])
    assert re.fullmatch(r"  <updated>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-05:00</updated>", head[5])
    opensearch = 'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
    assert head[6:] == [
        f"  <opensearch:totalResults {opensearch}>1</opensearch:totalResults>",
        f"  <opensearch:startIndex {opensearch}>0</opensearch:startIndex>",
        f"  <opensearch:itemsPerPage {opensearch}>1</opensearch:itemsPerPage>",
    ]


def test_long_titles_wrap_and_text_is_escaped(fake: FakeArxiv, papers, make_client) -> None:
    _, _, body = fetch(fake.url, id_list=",".join(p.id for p in papers), max_results="50")
    root = strict_xml(body)  # well-formed despite <, &, $, backslashes and unicode
    assert len(root.findall("a:entry", NS)) == 20
    text = body.decode()
    assert (
        "<title>When Item Descriptions Contain &lt;script&gt;: Prompt-Injection Robustness of\n"
        "  Large Language Model Recommenders</title>"
    ) in text
    assert "&lt;b&gt; emphasis" in text and "<b>" not in text
    assert "Cora &amp; Citeseer" in text
    assert "<name>Dana Müller</name>" in text and "≈98%" in text
    titles = {r.get_short_id(): r.title for r in run(make_client(), id_list=["2507.14402"])}
    assert titles == {"2507.14402v1": papers[7].title}


def test_doi_and_journal_ref_are_rendered(fake: FakeArxiv, make_client) -> None:
    (result,) = run(make_client(), id_list=["2502.07730"])
    assert result.doi == "10.1145/3701716.3715210"
    assert result.journal_ref.startswith("Companion Proceedings of the ACM Web Conference 2025")
    assert {link.title: link.href for link in result.links}["doi"] == (
        "http://dx.doi.org/10.1145/3701716.3715210"
    )
    assert result.title == "DiffRec-X | A Diffusion Model for Recommendation at Industrial Scale"


# --- queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"ti:{DMR} OR abs:{DMR}", DMR_IDS),
        (f"ti:{DMR}", ["2511.12114", "2403.08814", "2406.11235", "2502.07730"]),
        (f"abs:{DMR.lower()}", ["2403.08814", "2406.11235", "2409.05521", "2502.07730"]),
        ('ti:"Diffusion Models for Recommendation"', ["2407.18820"]),
        (f"all:{GNN}", GNN_IDS),
        (f"all:{LLM}", LLM_IDS),
        (f"all:{DMR} AND all:{GNN}", ["2403.08814"]),
        (f"all:{GNN} AND all:{LLM}", ["2510.13456"]),
        ("cat:cs.CL", ["2507.14402", "2404.02290", "2408.09911", "2503.21178", "2508.02245"]),
        (f"all:{LLM} ANDNOT cat:cs.IR", ["2408.09911", "2503.21178", "2510.13456"]),
        (
            f"cat:cs.IR ANDNOT (all:{LLM} OR all:{GNN})",
            [
                *("2511.12114", "2501.10548", "2504.01541", "2406.11235", "2409.05521"),
                *("2502.07730", "2407.18820", "2411.07743"),
            ],
        ),
        (  # left to right: (LLM OR GNN) AND cs.IR
            f"ti:{LLM} OR ti:{GNN} AND cat:cs.IR",
            ["2403.08814", "2507.14402", "2401.06632", "cs/0112017", "2404.02290", "2508.02245"],
        ),
        (
            f"ti:{LLM} OR (ti:{GNN} AND cat:cs.IR)",
            [
                *("2403.08814", "2507.14402", "2401.06632", "cs/0112017", "2404.02290"),
                *("2408.09911", "2503.21178", "2508.02245", "2510.13456"),
            ],
        ),
        ("au:Haddad", ["2511.12114", "2507.14402", "2411.07743"]),
        ('au:"Dana Müller"', ["2501.10548"]),
        ("ti:survey", ["2501.10548"]),
        ('abs:"<b> emphasis"', ["2409.05521"]),
        ('abs:"$|S_i|$" OR ti:"<script>"', ["2406.11235", "2507.14402"]),
        ('ti:"no such phrase anywhere"', []),
    ],
)
def test_queries_select_the_right_papers(make_client, query: str, expected: list[str]) -> None:
    assert short_ids(run(make_client(), query)) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"search_query": 'ti:"unclosed'}, "Invalid query string"),
        ({"search_query": "(ti:graph"}, "Invalid query string"),
        ({"search_query": "ti:graph)"}, "Invalid query string"),
        ({"search_query": "ti:graph AND"}, "Invalid query string"),
        ({"search_query": "graph"}, "Invalid query string"),
        ({"search_query": "ti:graph OR OR ti:llm"}, "Invalid query string"),
        ({"search_query": "xx:graph"}, "unknown field prefix"),
        ({"search_query": "cat:cs.IR", "start": "-1"}, "start must be >= 0"),
        ({"search_query": "cat:cs.IR", "max_results": "ten"}, "max_results must be an integer"),
        ({"id_list": "1234.1234"}, "incorrect id format for 1234.1234"),
        ({"search_query": "cat:cs.IR", "sortBy": "date"}, "sortBy must be in"),
    ],
)
def test_malformed_requests_get_an_error_feed(fake: FakeArxiv, params, message: str) -> None:
    code, headers, body = fetch(fake.url, **params)
    assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
    root = strict_xml(body)
    (entry,) = root.findall("a:entry", NS)
    assert entry.findtext("a:title", namespaces=NS) == "Error"
    assert entry.findtext("a:id", namespaces=NS).startswith("http://arxiv.org/api/errors#")
    assert message in entry.findtext("a:summary", namespaces=NS)
    assert entry.findtext("a:author/a:name", namespaces=NS) == "arXiv api core"
    assert root.findtext("os:totalResults", namespaces=NS) == "1"


def test_library_silently_returns_nothing_for_an_error_feed(fake: FakeArxiv, make_client) -> None:
    # The error entry has no <published>, so arxiv 4 skips it and sees an empty first page.
    assert run(make_client(), 'ti:"unclosed') == []
    assert [r.status for r in fake.requests] == [200]


def test_sort_by_last_updated_descending(fake: FakeArxiv, make_client, papers) -> None:
    results = run(
        make_client(),
        "cat:cs.IR OR cat:cs.LG OR cat:cs.CL",
        sort_by=arxiv.SortCriterion.LastUpdatedDate,
        sort_order=arxiv.SortOrder.Descending,
    )
    assert len(results) == len(papers)
    updated = [r.updated for r in results]
    assert updated == sorted(updated, reverse=True) and len(set(updated)) == len(updated)
    assert (short_ids(results)[0], short_ids(results)[-1]) == ("2511.12114", "2401.06632")
    assert fake.requests[0].query["sortBy"] == "lastUpdatedDate"


def test_sort_by_submitted_date_ascending(make_client) -> None:
    results = run(
        make_client(),
        f"all:{GNN}",
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Ascending,
    )
    assert short_ids(results)[:2] == ["2401.06632", "cs/0112017"]
    assert [r.published for r in results] == sorted(r.published for r in results)


def test_paging_yields_every_result_exactly_once(fake: FakeArxiv, make_client) -> None:
    results = run(make_client(page_size=5), f"all:{GNN} OR all:{LLM}")
    ids = short_ids(results)
    assert len(ids) == len(set(ids)) == 12
    assert set(ids) == set(GNN_IDS) | set(LLM_IDS)
    assert [(r.query["start"], r.query["max_results"]) for r in fake.requests] == [
        ("0", "5"),
        ("5", "5"),
        ("10", "5"),
    ]


def test_opensearch_counts_of_a_partial_page(fake: FakeArxiv) -> None:
    _, _, body = fetch(fake.url, search_query=f"all:{GNN}", start="5", max_results="10")
    root = strict_xml(body)
    assert root.findtext("os:totalResults", namespaces=NS) == "7"
    assert root.findtext("os:startIndex", namespaces=NS) == "5"
    assert root.findtext("os:itemsPerPage", namespaces=NS) == "2"
    assert len(root.findall("a:entry", NS)) == 2


def test_answers_follow_the_current_paper_list(fake: FakeArxiv, make_client, papers) -> None:
    client = make_client()
    assert len(run(client, "cat:cs.IR")) == 14
    fake.papers = [papers[0].replace(version=2, title="A Brand New Title")]
    (result,) = run(client, "cat:cs.IR")
    assert (result.get_short_id(), result.title) == ("2511.12114v2", "A Brand New Title")
    fake.papers.clear()
    assert run(client, "cat:cs.IR") == []


# --- fault script ----------------------------------------------------------------------------


def test_status_fault_reaches_the_library(fake: FakeArxiv, make_client) -> None:
    fake.script.append(status(503))
    with pytest.raises(arxiv.HTTPError) as info:
        run(make_client(), "cat:cs.IR")
    assert info.value.status == 503
    assert [(r.action, r.status) for r in fake.requests] == [("status", 503)]


def test_retry_after_and_body_of_status_faults(fake: FakeArxiv) -> None:
    fake.script += [status(429, retry_after=7, body="Rate exceeded."), status(400)]
    code, headers, body = fetch(fake.url, search_query="cat:cs.IR")
    assert (code, headers["Retry-After"], body) == (429, "7", b"Rate exceeded.")
    code, headers, _ = fetch(fake.url, search_query="cat:cs.IR")
    assert code == 400 and "Retry-After" not in headers
    code, _, body = fetch(fake.url, search_query="cat:cs.IR")
    assert code == 200 and b"<entry>" in body
    assert [r.action for r in fake.requests] == ["status", "status", "ok"]
    assert [r.status for r in fake.requests] == [429, 400, 200]


def test_script_is_consumed_in_order_across_library_retries(fake: FakeArxiv, make_client) -> None:
    fake.script += [status(503), "drop"]
    results = run(make_client(num_retries=2), f"all:{LLM}")
    assert short_ids(results) == LLM_IDS
    assert [r.action for r in fake.requests] == ["status", "drop", "ok"]
    assert fake.script == []


def test_empty_fault_is_a_valid_feed_without_entries(fake: FakeArxiv, make_client) -> None:
    fake.script.append("empty")
    code, _, body = fetch(fake.url, search_query="cat:cs.IR", start="0")
    root = strict_xml(body)
    assert code == 200 and root.findall("a:entry", NS) == []
    assert root.findtext("os:totalResults", namespaces=NS) == "0"
    assert root.findtext("os:itemsPerPage", namespaces=NS) == "0"
    fake.script.append("empty")
    assert run(make_client(), "cat:cs.IR") == []  # an empty first page is "no results"


def test_empty_later_page_makes_the_library_raise(fake: FakeArxiv, make_client) -> None:
    fake.script += ["ok", "empty"]
    with pytest.raises(arxiv.UnexpectedEmptyPageError):
        run(make_client(page_size=5), "cat:cs.IR")
    assert [r.action for r in fake.requests] == ["ok", "empty"]


def test_non_xml_fault(fake: FakeArxiv, make_client) -> None:
    fake.script.append("non_xml")
    code, headers, body = fetch(fake.url, search_query="cat:cs.IR")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    with pytest.raises(etree.XMLSyntaxError):
        strict_xml(body)
    fake.script.append("non_xml")
    assert run(make_client(), "cat:cs.IR") == []  # the library shrugs it off as no results
    assert [r.action for r in fake.requests] == ["non_xml", "non_xml"]


def test_error_feed_fault(fake: FakeArxiv, make_client) -> None:
    fake.script.append("error_feed")
    code, _, body = fetch(fake.url, search_query="cat:cs.IR")
    (entry,) = strict_xml(body).findall("a:entry", NS)
    assert code == 200 and entry.findtext("a:title", namespaces=NS) == "Error"
    assert entry.findtext("a:id", namespaces=NS).startswith("http://arxiv.org/api/errors#")
    fake.script.append("error_feed")
    assert run(make_client(), "cat:cs.IR") == []
    assert [r.action for r in fake.requests] == ["error_feed", "error_feed"]


def test_truncated_fault(fake: FakeArxiv, make_client) -> None:
    _, _, full = fetch(fake.url, search_query="cat:cs.IR")
    fake.script.append("truncated")
    code, headers, body = fetch(fake.url, search_query="cat:cs.IR")
    assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
    assert body == full[: len(full) // 2]
    with pytest.raises(etree.XMLSyntaxError):
        strict_xml(body)
    # arxiv's recovering parser keeps the entries before the cut, including the cut one (here
    # without categories), raises nothing, and asks for the rest from the next offset.
    fake.script.append("truncated")
    results = run(make_client(), "cat:cs.IR")
    assert len(results) == 14
    assert [r.get_short_id() for r in results if not r.categories] == ["2409.05521v1"]
    assert [(r.action, r.query["start"]) for r in fake.requests[2:]] == [
        ("truncated", "0"),
        ("ok", "6"),
    ]


def test_drop_fault(fake: FakeArxiv, make_client) -> None:
    fake.script.append("drop")
    with pytest.raises(http.client.RemoteDisconnected):
        fetch(fake.url, search_query="cat:cs.IR")
    fake.script.append("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        run(make_client(), "cat:cs.IR")
    assert [(r.action, r.status) for r in fake.requests] == [("drop", 0), ("drop", 0)]


def test_short_hang_then_normal_answer(fake: FakeArxiv) -> None:
    fake.script.append(hang(0.2))
    started = time.monotonic()
    code, _, body = fetch(fake.url, search_query="ti:survey")
    assert time.monotonic() - started >= 0.2
    assert code == 200 and b"2501.10548v3" in body
    assert fake.requests[0].action == "hang"


def test_hang_outlasts_a_client_timeout(fake: FakeArxiv) -> None:
    fake.script.append(hang(30))
    with pytest.raises(TimeoutError):
        fetch(fake.url, timeout=0.3, search_query="cat:cs.IR")
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.5


def test_stop_cuts_a_hang_short() -> None:
    before = set(threading.enumerate())
    errors: list[BaseException] = []
    fake = FakeArxiv(script=[hang(60)]).start()

    def client() -> None:
        try:
            fetch(fake.url, timeout=30, search_query="cat:cs.IR")
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    wait_for(lambda: len(fake.requests) == 1)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], urllib.error.URLError | ConnectionError)
    assert set(threading.enumerate()) == before


# --- request log, concurrency and life cycle -------------------------------------------------


def test_request_log_records_arrival_query_status_and_action(fake: FakeArxiv, make_client) -> None:
    before = time.monotonic()
    run(make_client(page_size=7), f"all:{GNN}")
    after = time.monotonic()
    (record,) = fake.requests
    assert isinstance(record, RequestRecord)
    assert before <= record.time <= after
    assert record.query == {
        "search_query": f"all:{GNN}",
        "id_list": "",
        "sortBy": "relevance",
        "sortOrder": "descending",
        "start": "0",
        "max_results": "7",
    }
    assert (record.status, record.action) == (200, "ok")


def test_library_never_opens_two_requests_at_once(fake: FakeArxiv, make_client) -> None:
    results = run(make_client(page_size=2), "cat:cs.IR")
    assert len(results) == 14 and len(fake.requests) == 7
    times = [r.time for r in fake.requests]
    assert times == sorted(times)
    assert fake.max_concurrent == 1


def test_max_concurrent_counts_overlapping_requests(fake: FakeArxiv) -> None:
    fake.script.append(hang(60))
    outcome: list[object] = []

    def slow() -> None:
        try:
            outcome.append(fetch(fake.url, timeout=30, search_query="cat:cs.IR"))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    wait_for(lambda: len(fake.requests) == 1)
    code, _, _ = fetch(fake.url, search_query="cat:cs.IR")
    assert code == 200
    assert fake.max_concurrent == 2
    fake.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(outcome) == 1
    assert [r.action for r in fake.requests] == ["hang", "ok"]


def test_start_stop_lifecycle_leaves_nothing_behind(papers) -> None:
    before = set(threading.enumerate())
    fake = FakeArxiv(papers)
    fake.start()
    url = fake.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/query", url)
    assert fake.start().url == url  # starting twice is harmless
    assert fetch(url, search_query="ti:survey")[0] == 200
    assert fetch(url.replace("/api/query", "/elsewhere"))[0] == 404
    fake.stop()
    fake.stop()  # stopping twice is harmless
    assert set(threading.enumerate()) == before
    with pytest.raises(urllib.error.URLError):
        fetch(url, timeout=2, search_query="ti:survey")
    with FakeArxiv(papers) as again:
        assert fetch(again.url, search_query="ti:survey")[0] == 200
    assert set(threading.enumerate()) == before


def test_unknown_action_answers_500(fake: FakeArxiv) -> None:
    fake.script.append("explode")
    code, _, body = fetch(fake.url, search_query="cat:cs.IR")
    assert (code, body) == (500, b"unknown action 'explode'\n")
    assert [(r.action, r.status) for r in fake.requests] == [("invalid", 500)]
