"""Digest rendering: escaping, size limit, and what each part shows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
from helpers.builders import stored_paper
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.models import Paper, collapse
from digest.presentation import SNIPPET, preheader, snippet, subject
from digest.render import MAX_HTML_BYTES, Renderer, make_environment

DAY = date(2025, 11, 16)


def paper(n: int, **changes) -> Paper:
    fields = dict(
        id=f"2511.{n:05d}",
        version=1,
        title=f"Paper number {n} on diffusion",
        authors=tuple(f"Author {i}" for i in range(8)),
        abstract="word " * 350,
        comment="12 pages",
        published=datetime(2025, 11, 15, tzinfo=UTC),
        updated=datetime(2025, 11, 15, tzinfo=UTC),
    )
    return stored_paper(**(fields | changes))


ABSTRACT = (  # as long as a typical arXiv abstract (about 1,000 characters)
    "We study how diffusion models recommend items to people who rarely click anything. "
    "Our method denoises sparse interaction vectors with a graph prior and improves recall "
    "by twelve percent on three public datasets. We also release the code and the data, "
    "and discuss what goes wrong when the graph is noisy or the catalogue changes quickly. "
    "A second experiment shows that the prior matters most for users with fewer than ten "
    "interactions, and that it costs little for the others. Training takes four hours on "
    "one GPU, and inference fits in the latency budget of a production feed. Finally, we "
    "relate the method to earlier work on variational autoencoders and graph convolutions, "
    "and show where each of them fails on the long tail of the catalogue."
)


def renderer(archive_url: str | None = None) -> Renderer:
    return Renderer(make_environment(), "Daily Papers", archive_url, "papers@example.org")


def test_paper_text_cannot_inject_markup():
    evil = paper(
        1,
        title='<script>alert("x")</script> & <b>bold</b>',
        abstract="a <img src=x onerror=alert(1)> b",
        comment="<i>c</i>",
        authors=("<a href='x'>Eve</a>",),
    )
    body = renderer().edition([("Topic <one>", [(evil, ("Tag <two>",))])], DAY)
    assert "<script" not in body.html and "<img" not in body.html and "<i>" not in body.html
    assert "&lt;script&gt;" in body.html and "&lt;img src=x" in body.html
    assert "<a href='x'>" not in body.html and "Topic &lt;one&gt;" in body.html
    assert '<script>alert("x")</script>' in body.text  # the text part shows it as it is


def test_small_digest_is_complete():
    body = renderer().edition([("Topic", [(paper(1), ())])], DAY)
    assert body.subject == "1 new · Topic"
    assert "word " * 20 in body.html and "shorter than usual" not in body.html
    assert "Author 0, Author 1, Author 2, Author 3, Author 4 et al. (8 authors)" in body.html
    assert set(body.placeholders) == {"greeting", "unsubscribe_url", "manage_url", "email"}
    assert all(marker in body.html for marker in body.placeholders.values())


def test_large_digest_stays_under_the_clipping_limit_and_says_so():
    sections = [(f"Topic {k}", [(paper(k * 1000 + i), ()) for i in range(100)]) for k in range(3)]
    body = renderer("https://example.org/papers").edition(sections, DAY)
    assert len(body.html.encode()) <= MAX_HTML_BYTES
    assert body.papers == 300 and body.subject.startswith("300 new · Topic 0 (100)")
    assert "Abstracts are left out here" in body.html
    assert "newest papers of each topic are listed here" in body.html
    assert "the plain-text version of this email lists them all" in body.html
    assert '<a href="https://example.org/papers">The archive</a>' in body.html
    # The text part is never shortened: no client clips it.
    assert "arxiv.org/abs/2511.02099v1" in body.text
    assert body.text.count("\n* ") == 300 and body.text.count("\n  Abstract: ") == 300


def test_a_shortened_list_links_to_the_full_one():
    sections = [("Topic 0", [(paper(i), ()) for i in range(400)])]
    web = "https://papers.example.org/days/2025-11-16/topic-0"
    body = renderer().edition(sections, DAY, browser_url=web, more_urls={"Topic 0": web + "-only"})
    assert f'<a href="{web}">View in your browser</a>' in body.html
    assert f'<a href="{web}-only">see all 400 on the web</a>' in body.html
    assert f"View in your browser: {web}" in body.text
    listing = "https://arxiv.org/list/cs.IR/new"
    body = renderer().edition(sections, DAY, more_urls={"Topic 0": listing})
    assert "View in your browser" not in body.html
    assert f'<a href="{listing}">arXiv\'s listing of this topic</a>' in body.html.replace(
        "&#39;", "'"
    )


def test_a_hundred_papers_with_snippets_fit_without_capping():
    sections = [
        ("Topic A", [(paper(i, abstract=ABSTRACT), ()) for i in range(50)]),
        ("Topic B", [(paper(100 + i, abstract=ABSTRACT), ("Topic A",)) for i in range(50)]),
    ]
    body = renderer().edition(sections, DAY)
    size = len(body.html.encode())
    assert size <= MAX_HTML_BYTES, size
    assert body.html.count("<h3>") == 100 and "listed here" not in body.html
    assert body.html.count("arXiv:2511.") == 100 and body.html.count("New submission") == 100
    assert body.html.count(">more</a>") == 100  # every abstract is a snippet with "more"
    assert "shorter than usual" not in body.html and "left out" not in body.html


def test_headings_labels_and_no_outside_resources():
    revised = paper(2, version=3, published=datetime(2001, 5, 12, tzinfo=UTC), doi="10.1/x")
    body = renderer().edition(
        [("Topic A", [(paper(1), ("Topic B",))]), ("Topic B", [(revised, ())])], DAY
    )
    tags = [tag for tag, _ in parse(body.html).tags]
    headings = [t for t in tags if t in ("h1", "h2", "h3", "h4")]
    assert headings == ["h1", "h2", "h3", "h2", "h3"]  # list, topic, paper
    for ref in ("arXiv:2511.00001v1", "arXiv:2511.00002v3"):
        assert ref in body.html and ref in body.text
    for label in ("New submission", "Revised (v3, first submitted 12 May 2001)"):
        assert label in body.html and label in body.text
    assert "Also in: Topic B" in body.html and "Also in: Topic B" in body.text
    assert 'href="https://doi.org/10.1/x"' in body.html and "DOI: 10.1/x" in body.text
    assert 'href="https://arxiv.org/html/2511.00002v3"' in body.html
    assert 'href="#topic-2"' in body.html and 'id="topic-2"' in body.html  # contents
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert " src=" not in body.html and "url(" not in body.html and "@import" not in body.html
    assert '<meta name="color-scheme" content="light dark">' in body.html
    assert "prefers-color-scheme: dark" in body.html and "max-width: 480px" in body.html
    assert "<!--[if mso]>" in body.html  # Outlook's fixed-width table


def test_the_text_part_has_the_list_on_top_and_a_signature_separator():
    body = renderer("https://example.org/a").edition(
        [("Topic A", [(paper(1), ())])], DAY, topics=["Topic A", "Topic C"]
    )
    assert body.text.startswith("Daily Papers · Sunday 16 November 2025\n")
    assert "\n-- \n" in body.text and "\n--\n" not in body.text
    assert "follows Topic A, Topic C on" in body.text and "follows Topic A, Topic C on" in body.html
    assert (
        "sent by papers@example.org" in body.text
        and "The archive: https://example.org/a" in body.text
    )
    assert "Unsubscribe from Daily Papers</a> (a page opens to confirm)" in body.html


@pytest.mark.parametrize(
    ("topics", "expected"),
    [
        ([("Graph Neural Network", 7)], "7 new · Graph Neural Network"),
        (
            [("Diffusion Model for Recommendation", 5), ("Graph Neural Network", 7)],
            "12 new · Diffusion Model for Recommendation (5), Graph Neural Network (7)",
        ),
        (
            [(f"Topic {i} of a rather long name", 2) for i in range(12)],
            "24 new · Topic 0 of a rather long name (2), Topic 1 of a rather long name (2) "
            "+ 10 more topics",
        ),
        ([("A" * 150, 3)], "3 new · " + "A" * 91 + "…"),
        ([("A" * 150, 3), ("B", 1)], "4 new · " + "A" * 72 + "… (3) + 1 more topic"),
    ],
)
def test_the_subject_carries_the_count_and_the_topics(topics, expected):
    text = subject(sum(n for _, n in topics), topics)
    assert text == expected and len(text) <= 100


def test_the_preheader_shows_the_first_titles_and_stays_hidden():
    sections = [("T", [(paper(i, title=f"Title number {i} about things"), ()) for i in range(9)])]
    body = renderer().edition(sections, DAY)
    hidden = body.html.split('<div style="display: none;', 1)[1].split("</div>", 1)[0]
    assert "Title number 0 about things · Title number 1 about things ·" in hidden
    assert len(preheader([f"Title {i} " * 10 for i in range(5)])) <= 140


def test_snippets_are_whole_sentences_or_cut_on_a_word():
    text = "First sentence is here. Second one follows it. " + "Third goes on. " * 40
    shown, cut = snippet(text)
    assert (shown, cut) == ("First sentence is here. Second one follows it.", True)
    shown, cut = snippet("word " * 200)
    assert cut and shown.endswith("word …") and len(shown) <= SNIPPET + 2
    assert snippet("Short abstract.") == ("Short abstract.", False)


@pytest.mark.parametrize(("mode", "shows"), [("full", 350), ("none", 0), ("snippet", 60)])
def test_the_operator_chooses_the_abstracts(mode, shows):
    body = Renderer(make_environment(), "Daily Papers", abstracts=mode).edition(
        [("T", [(paper(1), ())])], DAY
    )
    assert body.html.count("word ") >= shows and (shows or "word" not in body.html)


# --- properties: no paper text can add markup to the HTML part ------------------------------------


class Tags(HTMLParser):
    """Collect the start tags and the text of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))

    def handle_data(self, data) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


visible = (
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60)
    .map(collapse)
    .filter(bool)
)
nasty = visible | st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=1>',
        "</p></div><a href='//evil'>",
        "&lt;b&gt;",
        "a & b",
        "{{ 7*7 }}",
        "${x}",
        "\\u003c",
        "]]>",
        "<!--",
        "\u202e",
    ]
)
SHARED = renderer()  # one for every example: a new one compiles the templates again (35 ms)
SHAPE = [
    t
    for t in parse(
        SHARED.edition(
            [
                (
                    "Topic",
                    [(paper(1, title="x", abstract="y", comment="z", authors=("w",)), ("Tag",))],
                )
            ],
            DAY,
        ).html
    ).tags
]


@settings(max_examples=80, deadline=None)
@given(title=nasty, abstract=nasty, comment=nasty, author=nasty, keyword=nasty, tag=nasty)
def test_no_paper_text_changes_the_html_structure(title, abstract, comment, author, keyword, tag):
    evil = paper(1, title=title, abstract=abstract, comment=comment, authors=(author,))
    body = SHARED.edition([(keyword, [(evil, (tag,))])], DAY)
    parsed = parse(body.html)
    assert parsed.tags == SHAPE
    text = "".join(parsed.text)
    for value in (title, abstract, comment, author, keyword, tag):
        assert value in text  # shown as text, exactly


def test_sections_show_each_paper_once_with_its_other_keywords_as_tags():
    from digest.presentation import sections_for

    papers = {n: paper(n) for n in (1, 2, 3)}
    ids = {n: p.id for n, p in papers.items()}
    new_by_key = {"a": [ids[1], ids[2]], "b": [ids[2], ids[3]]}
    names = {"a": "Topic A", "b": "Topic B"}
    by_id = {p.id: p for p in papers.values()}
    # Paper 3 was seen under "a" on an earlier day: not news to someone following both.
    earlier = {ids[3]: {"a"}}
    both = sections_for(("a", "b"), new_by_key, earlier, by_id, names)
    assert [(name, [(p.id, tags) for p, tags in items]) for name, items in both] == [
        ("Topic A", [(ids[1], ()), (ids[2], ("Topic B",))])
    ]
    only_b = sections_for(("b",), new_by_key, earlier, by_id, names)
    assert [(p.id, tags) for p, tags in only_b[0][1]] == [(ids[2], ()), (ids[3], ())]


def test_operator_templates_override_the_shipped_ones(tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "subject.txt").write_text("[{{ list_name }}] {{ count }} on {{ day }}")
    body = Renderer(make_environment(tmp_path), "Daily Papers").edition(
        [("Topic", [(paper(1), ())])], DAY
    )
    assert body.subject == "[Daily Papers] 1 on 2025-11-16"
    assert "<html" in body.html  # the other templates are still the shipped ones
