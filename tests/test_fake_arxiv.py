"""Tests of the fake arXiv API, read back through the real ``arxiv`` library and plain urllib."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import arxiv
import pytest
import requests
from helpers.fake_arxiv import (
    FakeArxiv,
    FeedPaper,
    RequestRecord,
    busy_papers,
    dribble,
    hang,
    huge,
    load_papers,
    redirect,
    status,
)
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


def test_xml_overrides_change_only_the_rendered_entry(fake: FakeArxiv, papers) -> None:
    odd = [
        papers[0].replace(xml={"updated": "not a date"}),
        papers[1].replace(xml={"id": None}),
        papers[2].replace(xml={"title": "Raw &amp; <i>kept</i>", "published": None}),
    ]
    fake.papers = [*odd, *papers[3:]]
    code, _, body = fetch(
        fake.url, search_query="cat:cs.IR OR cat:cs.LG OR cat:cs.CL", max_results="50",
        sortBy="lastUpdatedDate", sortOrder="descending",
    )  # fmt: skip
    entries = strict_xml(body).findall("a:entry", NS)
    assert code == 200 and len(entries) == 20
    order = [e.find("a:link[@title='pdf']", NS).get("href").split("/pdf/")[1] for e in entries]
    by_pdf = dict(zip(order, entries, strict=True))  # the pdf link keeps the real id
    first, second, third = (by_pdf[p.versioned_id] for p in odd)
    assert "<updated>not a date</updated>" in body.decode()
    assert first.findtext("a:updated", namespaces=NS) == "not a date"
    assert first.findtext("a:id", namespaces=NS) == f"http://arxiv.org/abs/{odd[0].versioned_id}"
    assert second.find("a:id", NS) is None and second.find("a:updated", NS) is not None
    assert [child.tag.split("}")[1] for child in second][:4] == [
        "updated", "published", "title", "summary",
    ]  # fmt: skip
    assert third.find("a:published", NS) is None
    assert "<title>Raw &amp; <i>kept</i></title>" in body.decode()  # verbatim, not escaped
    # selection and order still follow the real fields and dates
    real = sorted(fake.papers, key=lambda p: (p.updated, p.id), reverse=True)
    assert order == [p.versioned_id for p in real]
    _, _, body = fetch(fake.url, search_query=f'ti:"{papers[2].title[:30]}"')
    assert b"Raw &amp; <i>kept</i>" in body


def test_xml_overrides_round_trip_and_are_checked(papers) -> None:
    plain = papers[0].to_dict()
    assert "xml" not in plain and FeedPaper.from_dict(plain).xml == {}
    odd = papers[0].replace(xml={"updated": "not a date", "id": None})
    assert odd.to_dict() == {**plain, "xml": {"updated": "not a date", "id": None}}
    assert FeedPaper.from_dict(json.loads(json.dumps(odd.to_dict()))) == odd
    with pytest.raises(ValueError, match="xml can override"):
        papers[0].replace(xml={"author": "x"})


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
        ({"id_list": "abc"}, "incorrect id format for abc"),
        ({"search_query": "cat:cs.IR", "sortBy": "date"}, "sortBy must be in"),
    ],
)
def test_malformed_requests_get_a_400_error_feed(fake: FakeArxiv, params, message: str) -> None:
    code, headers, body = fetch(fake.url, **params)
    assert code == 400 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    root = strict_xml(body)
    (entry,) = root.findall("a:entry", NS)
    assert entry.findtext("a:title", namespaces=NS) == "Error"
    assert entry.findtext("a:id", namespaces=NS).startswith("http://arxiv.org/api/errors#")
    assert message in entry.findtext("a:summary", namespaces=NS)
    assert entry.findtext("a:author/a:name", namespaces=NS) == "arXiv api core"
    assert root.findtext("os:totalResults", namespaces=NS) == "1"
    assert [(r.action, r.status) for r in fake.requests] == [("ok", 400)]


def test_bad_id_error_feed_matches_arxiv(fake: FakeArxiv) -> None:
    code, _, body = fetch(fake.url, id_list="abc")
    (entry,) = strict_xml(body).findall("a:entry", NS)
    assert code == 400
    assert entry.findtext("a:id", namespaces=NS) == (
        "http://arxiv.org/api/errors#incorrect_id_format_for_abc"
    )
    assert entry.findtext("a:summary", namespaces=NS) == "incorrect id format for abc"


@pytest.mark.parametrize("action", ["ok", "empty", "truncated", hang(0), dribble(0)])
def test_actions_built_on_the_normal_answer_send_400(fake: FakeArxiv, action) -> None:
    fake.script.append(action)
    code, headers, body = fetch(fake.url, id_list="abc")
    assert code == 400 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert body.startswith(b"<?xml") and len(body) == int(headers["Content-Length"])
    assert (b"incorrect id format for abc" in body) == (action != "truncated")
    assert [r.status for r in fake.requests] == [400]


def test_library_raises_on_a_400_error_feed(fake: FakeArxiv, make_client) -> None:
    with pytest.raises(arxiv.HTTPError) as info:
        run(make_client(), 'ti:"unclosed')
    assert info.value.status == 400
    assert [(r.action, r.status) for r in fake.requests] == [("ok", 400)]


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
    # The old form: the error entry has no <published>, so arxiv 4 skips it and sees no results.
    fake.script.append("error_feed")
    assert run(make_client(), "cat:cs.IR") == []
    assert [(r.action, r.status) for r in fake.requests] == [("error_feed", 200)] * 2


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


# --- slow, huge and redirected answers -------------------------------------------------------


@contextlib.contextmanager
def answer(fake: FakeArxiv, **params: str) -> Iterator[http.client.HTTPResponse]:
    """GET the fake with http.client and yield the response, body unread; then hang up."""
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(fake.url).port, timeout=5)
    try:
        conn.request("GET", f"/api/query?{urlencode(params)}")
        with conn.getresponse() as resp:  # the socket closes only once the response does too
            yield resp
    finally:
        conn.close()


def without_clock(body: bytes) -> bytes:
    """Blank the feed's own <updated> time, the only part of an answer that follows the clock."""
    return re.sub(rb"<updated>[^<]*-05:00</updated>", b"<updated/>", body)


def test_dribble_sends_the_normal_answer_one_byte_at_a_time(fake: FakeArxiv) -> None:
    _, _, normal = fetch(fake.url, search_query="ti:survey")
    fake.script.append(dribble(0))
    code, headers, body = fetch(fake.url, search_query="ti:survey")
    assert code == 200 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert without_clock(body) == without_clock(normal)
    assert strict_xml(body).find("a:entry/a:id", NS).text.endswith("2501.10548v3")
    fake.script.append(dribble(0.05))
    sent = time.monotonic()
    with answer(fake, search_query="ti:survey") as resp:
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(normal)
        assert [resp.read(1) for _ in range(4)] == [b"<", b"?", b"x", b"m"]
        assert time.monotonic() - sent >= 3 * 0.05  # three gaps after the first byte
    assert [(r.action, r.status) for r in fake.requests] == [("ok", 200), *[("dribble", 200)] * 2]


def test_dribble_size_closes_the_connection_early(fake: FakeArxiv) -> None:
    fake.script.append(dribble(0.001, size=20))
    with (
        answer(fake, search_query="cat:cs.IR") as resp,
        pytest.raises(http.client.IncompleteRead) as info,
    ):
        resp.read()
    assert info.value.partial == b'<?xml version="1.0" '
    assert len(info.value.partial) + info.value.expected == int(resp.getheader("Content-Length"))
    assert info.value.expected > 1000


def test_stop_cuts_a_dribble_short(capsys) -> None:
    before = set(threading.enumerate())
    fake = FakeArxiv(load_papers(DATA), script=[dribble(60)]).start()
    outcome: list[object] = []

    def client() -> None:
        with answer(fake, search_query="cat:cs.IR") as resp:
            outcome.append(resp.read(1))
            try:
                resp.read()
            except http.client.IncompleteRead as exc:
                outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    wait_for(lambda: outcome == [b"<"])
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert isinstance(outcome[1], http.client.IncompleteRead) and outcome[1].partial == b""
    assert set(threading.enumerate()) == before
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("action", [dribble(0.01), huge(64), huge(64, content_length=False)])
def test_a_client_leaving_mid_answer_ends_it_quietly(papers, capsys, action) -> None:
    before = set(threading.enumerate())
    with FakeArxiv(papers, script=[action]) as fake:
        with answer(fake, search_query="cat:cs.IR") as resp:
            assert resp.status == 200 and len(resp.read(2)) == 2
        # hung up: the handler finds out on its next writes and ends on its own
        wait_for(lambda: len(set(threading.enumerate()) - before) == 1)  # the server's own
        assert [r.action for r in fake.requests] == [type(action).__name__.lower()]
    assert set(threading.enumerate()) == before
    assert capsys.readouterr().err == ""


def test_huge_streams_a_big_feed_without_holding_it(fake: FakeArxiv) -> None:
    fake.script.append(huge(24))
    tracemalloc.start()
    try:
        with answer(fake, search_query="cat:cs.IR") as resp:
            first = resp.read(65536)
            size, last = len(first), b""
            while chunk := resp.read(65536):
                size, last = size + len(chunk), (last + chunk)[-100:]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("application/atom")
    assert int(resp.getheader("Content-Length")) == size == 24 * 2**20
    assert peak < 4 * 2**20  # the 24 MiB body never sat in memory, on either side
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns=')
    assert b"<summary>lorem ipsum dolor sit amet lorem ipsum" in first
    assert last.endswith(b'scheme="http://arxiv.org/schemas/atom"/>\n  </entry>\n</feed>\n')
    assert fake.requests[0].action == "huge" and fake.requests[0].status == 200


@pytest.mark.parametrize("content_length", [True, False])
def test_huge_feed_is_a_valid_feed_of_one_entry(fake: FakeArxiv, content_length: bool) -> None:
    fake.script.append(huge(0.5, content_length=content_length))
    with answer(fake, search_query="cat:cs.IR") as resp:
        body = resp.read()
    assert resp.status == 200 and len(body) == 2**19
    assert resp.getheader("Content-Length") == (str(2**19) if content_length else None)
    assert (resp.getheader("Connection") == "close") == (not content_length)
    root = strict_xml(body)
    assert root.findtext("os:totalResults", namespaces=NS) == "1"
    (entry,) = root.findall("a:entry", NS)
    summary = entry.findtext("a:summary", namespaces=NS)
    assert len(summary) > 2**19 - 2000
    assert set(summary.split()) == {"lorem", "ipsum", "dolor", "sit", "amet"}
    assert entry.findtext("a:id", namespaces=NS) == "http://arxiv.org/abs/2511.99999v1"
    assert [(r.action, r.status) for r in fake.requests] == [("huge", 200)]


def test_stop_cuts_a_huge_answer_short(capsys) -> None:
    before = set(threading.enumerate())
    fake = FakeArxiv(script=[huge(256)]).start()
    with answer(fake, search_query="cat:cs.IR") as resp:
        assert len(resp.read(1000)) == 1000  # then stop reading: the server blocks on a full window
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.expected > 100 * 2**20
    assert set(threading.enumerate()) == before
    assert capsys.readouterr().err == ""


def test_redirect_fault(fake: FakeArxiv, make_client) -> None:
    fake.script.append(redirect("http://elsewhere.invalid/api/query?x=1", 301))
    with answer(fake, search_query="cat:cs.IR") as resp:
        assert (resp.status, resp.read()) == (301, b"")
    assert resp.getheader("Location") == "http://elsewhere.invalid/api/query?x=1"
    assert resp.getheader("Content-Length") == "0"
    fake.script.append(redirect(f"{fake.url}?search_query=ti:survey"))
    code, _, body = fetch(fake.url, search_query="cat:cs.IR")  # urllib follows it
    assert code == 200 and b"2501.10548v3" in body
    assert [(r.action, r.status) for r in fake.requests] == [
        ("redirect", 301),
        ("redirect", 302),
        ("ok", 200),
    ]
    assert fake.requests[2].query == {"search_query": "ti:survey"}
    fake.script.append(redirect(f"{fake.url}?search_query=ti:survey&max_results=10", 307))
    assert short_ids(run(make_client(), "cat:cs.IR")) == ["2501.10548"]  # so does requests
    assert [r.status for r in fake.requests[3:]] == [307, 200]


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


# --- many papers -----------------------------------------------------------------------------


def test_busy_papers_are_distinct_fresh_and_evenly_spaced() -> None:
    newest = datetime(2025, 11, 20, 12, tzinfo=UTC)
    papers = busy_papers(1500, "Graph Neural Network", newest)
    assert len(papers) == len({p.id for p in papers}) == 1500
    assert (papers[0].id, papers[-1].id) == ("2511.00000", "2511.01499")
    assert all(re.fullmatch(r"2511\.\d{5}", p.id) for p in papers)
    assert all("Graph Neural Network" in p.title for p in papers)
    assert papers[0].updated == papers[0].published == newest
    assert papers[7].updated == newest - 7 * timedelta(minutes=1)
    p = papers[3]
    assert (p.version, p.primary_category, p.categories) == (1, "cs.LG", ["cs.LG"])
    assert len(p.authors) == 2 and p.abstract and p.comment is None
    other = busy_papers(2, "x", newest, spacing=timedelta(hours=1), prefix="2412")
    assert [q.id for q in other] == ["2412.00000", "2412.00001"]
    assert other[1].updated == newest - timedelta(hours=1)


def test_fake_pages_through_1500_busy_papers_newest_first(fake: FakeArxiv) -> None:
    newest = datetime(2025, 11, 20, 12, tzinfo=UTC)
    papers = busy_papers(1500, "Busy Topic", newest)
    fake.papers = random.Random(7).sample(papers, len(papers))  # the fake must do the sorting
    seen: list[str] = []
    for start in (0, 500, 1000):
        began = time.monotonic()
        code, _, body = fetch(
            fake.url, search_query='ti:"busy topic"', sortBy="lastUpdatedDate",
            sortOrder="descending", start=str(start), max_results="500",
        )  # fmt: skip
        assert time.monotonic() - began < 2.0
        root = strict_xml(body)
        assert code == 200 and root.findtext("os:totalResults", namespaces=NS) == "1500"
        assert root.findtext("os:startIndex", namespaces=NS) == str(start)
        assert root.findtext("os:itemsPerPage", namespaces=NS) == "500"
        ids = [e.findtext("a:id", namespaces=NS) for e in root.findall("a:entry", NS)]
        seen += [i.removeprefix("http://arxiv.org/abs/").removesuffix("v1") for i in ids]
    assert seen == [p.id for p in papers]  # paper 0 is the newest
    assert [(r.query["start"], r.status) for r in fake.requests] == [
        ("0", 200), ("500", 200), ("1000", 200),
    ]  # fmt: skip
