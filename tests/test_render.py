"""Digest rendering: escaping, size limit, and what each part shows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html.parser import HTMLParser

from conftest import stored_paper
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.models import Paper, collapse
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


def renderer(archive_url: str | None = None) -> Renderer:
    return Renderer(make_environment(), "Daily Papers", archive_url)


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
    assert body.subject == "Daily Papers: 1 new paper on 2025-11-16"
    assert "word " * 20 in body.html and "shortened" not in body.html
    assert "Author 0, Author 1, Author 2, Author 3, Author 4 et al. (8 authors)" in body.html
    assert set(body.placeholders) == {"greeting", "unsubscribe_url", "email"}
    assert all(marker in body.html for marker in body.placeholders.values())


def test_large_digest_stays_under_the_clipping_limit_and_says_so():
    sections = [(f"Topic {k}", [(paper(k * 1000 + i), ()) for i in range(100)]) for k in range(3)]
    body = renderer("https://example.org/papers").edition(sections, DAY)
    assert len(body.html.encode()) <= MAX_HTML_BYTES
    assert body.papers == 300 and "300 new papers" in body.subject
    assert "Abstracts are " in body.html or "newest papers of each topic" in body.html
    assert (
        "Only the" in body.html
        and 'in <a href="https://example.org/papers">the archive' in body.html
    )
    assert "more: see the archive at https://example.org/papers" in body.text


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
SHAPE = [
    t
    for t in parse(
        renderer()
        .edition(
            [
                (
                    "Topic",
                    [(paper(1, title="x", abstract="y", comment="z", authors=("w",)), ("Tag",))],
                )
            ],
            DAY,
        )
        .html
    ).tags
]


@settings(max_examples=150, deadline=None)
@given(title=nasty, abstract=nasty, comment=nasty, author=nasty, keyword=nasty, tag=nasty)
def test_no_paper_text_changes_the_html_structure(title, abstract, comment, author, keyword, tag):
    evil = paper(1, title=title, abstract=abstract, comment=comment, authors=(author,))
    body = renderer().edition([(keyword, [(evil, (tag,))])], DAY)
    parsed = parse(body.html)
    assert parsed.tags == SHAPE
    text = "".join(parsed.text)
    for value in (title, abstract, comment, author, keyword, tag):
        assert value in text  # shown as text, exactly


def test_sections_show_each_paper_once_with_its_other_keywords_as_tags():
    from digest.planning import sections_for

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
