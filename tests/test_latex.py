"""Readable math: titles' and abstracts' LaTeX as Unicode in the email, the pages and the feeds;
the markdown archive keeps the source."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import aiohttp
import feedparser
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import DATA, make_paper
from helpers.cycles import ALAN, DAY1, recording
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import latex
from digest.archive import cell
from digest.latex import text
from digest.pipeline import run_once
from digest.web import make_app

TITLE = r"Graph Neural Network baskets of size $|S_i|$ in $\mathcal{O}(n \log n)$"
SHOWN = "Graph Neural Network baskets of size |Sᵢ| in 𝒪(n log n)"
ABSTRACT = (
    r"We bound $\|x - \hat{x}\|_2^2 \le \epsilon$ for all $x \in \mathbb{R}^d$ with "
    r"M\"{u}ller's method, at a cost of $5 per run and $10 per day; 12% faster."
)
ABSTRACT_SHOWN = (
    "We bound ‖x - x̂‖₂² ≤ ϵ for all x ∈ ℝᵈ with Müller's method, at a cost of $5 per run "
    "and $10 per day; 12% faster."
)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("$|S_i|$", "|Sᵢ|"),  # the examples
        (r"\mathcal{O}(n \log n)", "𝒪(n log n)"),
        (r"$\mathcal{O}(n\log n)$ and $O(n^2)$", "𝒪(n log n) and O(n²)"),
        (r"$x_{ij}$, $x_{i,j}$, $\theta_{t+1}$, $W^{(l)}$", "xᵢⱼ, x_(i,j), θₜ₊₁, W⁽ˡ⁾"),
        (r"$e^{-\lambda t}$ and $10^{-3}$ and $\mathbf{x}^\top$", "e^(-λt) and 10⁻³ and xᵀ"),
        (r"$\alpha \le \beta$, $\infty$, $a \times b$, $\ell_1$", "α ≤ β, ∞, a × b, ℓ₁"),
        (r"$\mathbb{R}^{n \times m}$, $\mathfrak{g}$, $\mathcal{L}$", "ℝ^(n×m), 𝔤, ℒ"),
        (r"$\frac{a+b}{2}$, $\sqrt{n}$, $\tilde{O}(n)$, $\not\in$", "(a+b)/2, √n, Õ(n), ∉"),
        (r"Erd\H{o}s, G\"odel, \c{c}a, \'{\i}, {\"o}", "Erdős, Gödel, ça, í, ö"),
        (
            r"\emph{Hyper}bolic \textbf{D}iffusion, 50\% \& {\bf more}",
            "Hyperbolic Diffusion, 50% & more",
        ),
        (r"a $\sim$10x speed-up, $\sim$3\,000 runs", "a ∼10x speed-up, ∼3 000 runs"),
        # Money, percent signs and tildes are text, not TeX.
        ("costs $5 and $10", "costs $5 and $10"),
        ("costs $5, $10 and $15", "costs $5, $10 and $15"),
        ("between $5-$10 and US$20,000", "between $5-$10 and US$20,000"),
        (r"\$5 for $x$", "$5 for x"),
        ("up to 12% more, ~4 times", "up to 12% more, ~4 times"),
        # Not understood: kept as written, never dropped.
        (r"see \cite{smith} and $\foo{x}$", r"see \cite{smith} and \foo{x}"),
        (
            "a \\u003c b, { unbalanced, a $ alone, \\ ends",
            "a \\u003c b, { unbalanced, a $ alone,  ends",
        ),
        ("a lone backslash at the end \\", "a lone backslash at the end \\"),
        ("{BERT} stays", "{BERT} stays"),
    ],
)
def test_latex_reads_as_unicode_text(source, shown):
    assert text(source) == shown


def test_plain_text_is_returned_as_it_is_and_conversions_are_kept():
    plain = "Graph Neural Networks {for} ~everyone_ at 12% ^^"
    assert text(plain) is plain
    assert text(TITLE) is text(TITLE)  # converted once per process, however many bodies


def test_converting_a_paper_costs_well_under_a_millisecond():
    papers = json.loads((DATA / "papers.json").read_text())
    texts = [p[k] for p in papers for k in ("title", "abstract")]
    latexy = [t for t in texts if "$" in t or "\\" in t]
    assert len(latexy) >= 4
    start = time.process_time()
    for _ in range(20):
        for t in latexy:
            latex._convert(t)  # uncached
    each = (time.process_time() - start) / (20 * len(latexy))
    assert each < 0.001, f"{each * 1e6:.0f} µs per abstract with LaTeX"


# Formulas as arXiv writes them, built from atoms, scripts and groups.
ATOMS = st.sampled_from(
    [
        *"xn2+()|,",
        *(r"\alpha", r"\le", r"\log", r"\infty", r"\|", r"\{", r"\mathcal{O}", r"\mathbb{R}"),
        *(r"\hat{x}", r"\frac{1}{n}", r"\sqrt{k}", r"\foo"),
    ]
)
FORMULA = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, st.sampled_from(["^", "_"]), inner).map(
            lambda t: f"{t[0]}{t[1]}{{{t[2]}}}"
        ),
        inner.map(lambda f: "{" + f + "}"),
        st.tuples(inner, inner).map(" ".join),
    ),
    max_leaves=12,
)
WORDS = st.lists(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="$\\")))
def test_text_without_dollars_or_backslashes_is_unchanged(plain):
    assert text(plain) == plain


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("$\\{}^_~%&'\"` aZ1.-*[]()\n") | st.characters()))
def test_no_text_makes_the_conversion_fail_or_add_dollars(source):
    shown = latex._convert(source)  # unguarded: an exception fails the test
    assert shown.count("$") <= source.count("$") and len(shown) <= 2 * len(source)


@pytest.mark.parametrize(
    "hostile",
    [
        "$" + "{" * 4000 + "x" + "}" * 4000 + "$",
        "$" + r"\hat{" * 1500 + "x" + "}" * 1500 + "$",
        "$x_{" + r"\frac" * 1900 + "}$",
        "$" + r"\sqrt[" * 1600 + "$",
        r"\(" * 5000,
        r"\u" * 5000,
        "$a$" * 3300,
    ],
)
def test_hostile_texts_take_little_time_and_room(hostile):
    start = time.process_time()
    shown = latex._convert(hostile)
    assert time.process_time() - start < 2 and len(shown) <= 2 * len(hostile)


@settings(max_examples=100, deadline=None)
@given(before=WORDS, formulas=st.lists(FORMULA, min_size=1, max_size=3), after=WORDS)
def test_math_between_words_leaves_no_dollar_and_keeps_the_words(before, formulas, after):
    source = " ".join(before) + " " + " and ".join(f"${f.strip()}$" for f in formulas)
    source += " " + " ".join(after)
    shown = latex._convert(source)
    assert "$" not in shown
    assert shown.startswith(" ".join(before) + " ") and shown.endswith(" " + " ".join(after))


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    """One cycle that mails, archives and records a paper with LaTeX in its title and abstract."""
    paper = make_paper("2511.70001", TITLE, DAY1 - timedelta(hours=10), abstract=ABSTRACT)
    folder = tmp_path_factory.mktemp("latex")
    with recording(folder, [paper], subscribers=ALAN) as (config, _, mail):
        assert run_once(config, clock=lambda: DAY1).ok
        (received,) = mail.received
    return config, received


def test_the_email_shows_the_math_as_unicode(cycled):
    _, received = cycled
    message = received.message  # the raw bytes aiosmtpd received, parsed
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "|Sᵢ|" in plain and "𝒪(n log n)" in plain and "$|S_i|$" not in plain
    assert " ".join(ABSTRACT_SHOWN.split()) in " ".join(plain.split())
    unbold = html.replace("<b>", "").replace("</b>", "")  # the topic's words are in bold
    assert f'<h3><a href="https://arxiv.org/abs/2511.70001v1">{SHOWN}</a></h3>' in unbold
    preheader = re.search(r'mso-hide: all;">([^<]*?)\u034f', html)  # its filler: &#847;
    assert preheader and preheader[1] == SHOWN
    assert "‖x - x̂‖₂² ≤ ϵ" in html and "\\mathcal" not in html and "\\mathcal" not in plain


def test_the_archive_keeps_the_latex_source(cycled):
    config, _ = cycled
    archive = config.archive.read_text(encoding="utf-8")
    assert r"baskets of size $\|S_i\|$ in $\mathcal{O}(n \log n)$" in archive  # '|' escaped
    assert cell(ABSTRACT) in archive  # exactly as the archive wrote it before
    assert "Sᵢ" not in archive and "𝒪" not in archive


async def test_the_reading_room_and_feeds_show_the_math_as_unicode(cycled):
    config, _ = cycled
    server = TestServer(make_app(config), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as client:
            pages = {}
            for path in (
                "/topics/graph-neural-network",
                "/days/2025-11-16",
                "/search?q=baskets",
                "/feeds/graph-neural-network.atom",
                "/feeds/all.atom",
            ):
                async with client.get(base + path) as answer:
                    assert answer.status == 200, path
                    pages[path] = await answer.text()
    finally:
        await server.close()
    for path, body in pages.items():
        assert "|Sᵢ|" in body and "𝒪(n log n)" in body and "$|S_i|$" not in body, path
        assert "Müller" in body and "\\mathcal" not in body, path
    (entry,) = feedparser.parse(pages["/feeds/graph-neural-network.atom"]).entries
    assert entry.title == SHOWN and entry.summary == ABSTRACT_SHOWN
