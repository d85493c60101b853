"""The archive read where it is published: a GFM renderer shows no markup from arXiv's texts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import unquote

import pytest
from helpers.builders import DATA, stored_paper
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from digest.archive import render_archive, row
from digest.models import Paper, collapse

# CommonMark with GFM's tables, strikethrough and bare-URL autolinks, as GitHub renders a README.
MD = MarkdownIt("gfm-like")
OWN_HTML = ["<details>", "<summary>", "</summary>", "<p>", "</p>", "</details>"]
TAGS = {"table", "thead", "tbody", "tr", "th", "td", "strong", "em", "s", "a", "details",
        "summary", "p", "h1", "h2"}  # fmt: skip
TRACKER = (
    "![track](https://evil.example/pixel.png) "
    "[Click to verify your subscription](https://evil.example/phish)"
)
HOSTILE = [
    TRACKER,
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[x][ref]\n\n[ref]: https://evil.example/ref",
    "[x]\n[x]: https://evil.example/ref 'title'",
    "<https://evil.example/auto>",
    "<evil@evil.example>",
    "&lt;img src=x&gt; &#60;b&#62; &amp;",
    "\\[x\\](https://evil.example/esc) \\\\[y\\\\](https://evil.example/esc2)",
    "\\![x](https://evil.example/i.png)",
    "`code` `` [z](https://evil.example/code) ``",
    "a | b || c \\| d \\\\| e",
    "</p></details><img src=x>",
    "</details> | <details open><summary>x</summary>",
    "[![x](https://evil.example/i.png)](https://evil.example/l)",
    "[x](<https://evil.example/a b>) [y]( javascript:alert(1) )",
    "*[em](https://evil.example/em)* **b** ~~s~~ _u_",
    "https://evil.example/bare?a=1&b=2 www.evil.example mail@evil.example",
    "<!-- comment --> <?php ?> <![CDATA[x]]> <a href=x>",
    "trailing backslash \\",
    "\\textit{\\textbf{H}yperbolic} $\\|x\\|_2$",
]


def table(*lines: str) -> str:
    """Return the archive's table with these rows."""
    header = "| **Title** | **Date** | **Abstract** | **Comment** |\n| --- | --- | --- | --- |\n"
    return header + "".join(line + "\n" for line in lines)


def arxiv_url(paper: Paper) -> str:
    return f"https://arxiv.org/abs/{paper.id}v{paper.version}"


def rows_of(document: str) -> list[list[list[Token]]]:
    """Return the table body rows as lists of cells, each the inline tokens of one cell."""
    rows: list[list[list[Token]]] = []
    body = False
    for token in MD.parse(document):
        if token.type == "html_block":
            raise AssertionError(f"raw HTML block: {token.content!r}")
        if token.type == "tbody_open":
            body = True
        elif token.type == "tbody_close":
            body = False
        elif body and token.type == "tr_open":
            rows.append([])
        elif body and token.type == "inline":
            rows[-1].append(token.children or [])
    return rows


def same_target(text: str, href: str) -> bool:
    """Tell whether a link shows where it goes (a bare URL, a www. name or an address)."""
    wanted = unquote(MD.normalizeLinkText(href))
    return any(
        MD.normalizeLink(p + text) == href or unquote(MD.normalizeLinkText(p + text)) == wanted
        for p in ("", "http://", "mailto:")
    )


def check_cell(tokens: list[Token], own: str | None = None) -> tuple[list[str], str]:
    """Assert a cell's links each show their target (but its own arXiv link); return its raw
    HTML tags and its text (in a <details> block: its paragraph's)."""
    html, text, own_links = [], "", 0
    link: Token | None = None
    label = ""
    for token in tokens:
        assert token.type != "image", f"an image: {token.attrs}"
        if token.type == "html_inline":
            html.append(token.content)
            text = "" if token.content == "<p>" else text
        elif token.type == "link_open":
            link, label = token, ""
        elif token.type == "link_close":
            assert link is not None
            href = str(link.attrs["href"])
            if own is not None and href == own and link.markup == "":
                own_links += 1
            else:
                assert link.markup == "linkify", f"a link written as markup: {href!r}"
                assert same_target(label, href), f"{label!r} leads to {href!r}"
            link = None
        elif token.type in ("text", "code_inline") and "</p>" not in html:
            text += token.content
            label += token.content
    if own is not None:
        assert own_links == 1, "the title is not one link to the paper"
    return html, text


def assert_safe(paper: Paper) -> tuple[str, str, str]:
    """Render a paper's row as GitHub would and assert the invariants; return the text shown
    of the title, the abstract and the comment."""
    line = row(paper)
    assert "\n" not in line
    document = table(line)
    rendered = MD.render(document)
    assert set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", rendered)) <= TAGS, rendered
    assert "<img" not in rendered and "<script" not in rendered
    [cells] = rows_of(document)
    assert len(cells) == 4
    html, title = check_cell(cells[0], own=arxiv_url(paper))
    assert html == []
    assert check_cell(cells[1])[0] == [] and cells[1][0].content == "2025-01-02"
    html, abstract = check_cell(cells[2])
    assert html == OWN_HTML
    html, comment = check_cell(cells[3])
    long = len(collapse(paper.comment)) > 20
    assert html == (OWN_HTML if long else [])
    return title, abstract, comment


def test_the_seed_archive_is_written_byte_for_byte():
    seed = (DATA / "archive-seed.md").read_text(encoding="utf-8")
    pattern = re.compile(
        r"\| \*\*\[(?P<title>.*?)\]\(https://arxiv\.org/abs/(?P<id>[^)]+)v(?P<v>\d+)\)\*\* "
        r"\| (?P<date>[\d-]+) \| <details><summary>Show</summary><p>(?P<abstract>.*?)</p>"
        r"</details> \| (?:<details><summary>.{5}\.\.\.</summary><p>(?P<long>.*)</p></details>"
        r"|(?P<short>[^<]*?)) \|"
    )
    papers = []
    for line in seed.splitlines():
        if line.startswith("| **["):
            found = pattern.fullmatch(line)
            assert found, line
            updated = datetime.fromisoformat(found["date"]).replace(tzinfo=UTC)
            paper = stored_paper(
                id=found["id"], version=int(found["v"]), title=found["title"],
                abstract=found["abstract"], comment=found["long"] or found["short"] or None,
                updated=updated, published=updated,
            )  # fmt: skip
            assert row(paper) == line  # each row, exactly
            papers.append(paper)
    assert len(papers) == 11
    section = [("Diffusion Model for Recommendation", papers)]
    assert render_archive("Daily Papers", date(2025, 12, 28), 100, section) == seed + "\n"


def test_the_tracker_and_phishing_link_become_text():
    title, abstract, comment = assert_safe(
        stored_paper(title=TRACKER, abstract=TRACKER, comment=TRACKER)
    )
    assert title == abstract == comment == TRACKER  # shown as written, nothing hidden
    rendered = MD.render(table(row(stored_paper(abstract=TRACKER))))
    assert "<img" not in rendered
    assert ">Click to verify your subscription</a>" not in rendered
    # The bare URLs the text holds may stay links that show where they go.
    assert '<a href="https://evil.example/phish">https://evil.example/phish</a>' in rendered


def test_hostile_texts_show_as_written():
    for text in HOSTILE:
        title, abstract, comment = assert_safe(
            stored_paper(title=text, abstract=text, comment=text)
        )
        # Emphasis is markdown's own, and harmless; a bare URL is taken in as written (escapes
        # and all) by markdown-it's autolinker, a display quirk: it still shows where it goes.
        if not re.search(r"[*_~:]", text):
            assert title == abstract == comment == collapse(text), text


def test_a_reference_definition_in_the_document_links_nothing():
    hostile = stored_paper(abstract="see [x][ref] and [ref]", comment="[ref]")
    document = (
        render_archive("Daily Papers", date(2025, 12, 28), 100, [("Topic", [hostile])])
        + "\n[ref]: https://evil.example/ref\n"
    )
    assert "evil.example" not in MD.render(document)


def test_a_row_without_markup_is_left_alone():
    plain = stored_paper(
        title="Plain: a (simple) title, 100% clear; isn't it? #1 - yes! {x} $y$ 'q' \"d\"",
        abstract="Braces {x}, \\textit{LaTeX}, & more; a+b=c, @home ~ 50% off. *stars* _u_",
        comment="12 pages, 3 figures",
    )
    assert row(plain) == (
        f"| **[{plain.title}](https://arxiv.org/abs/2501.00001v2)** | 2025-01-02 | "
        f"<details><summary>Show</summary><p>{plain.abstract}</p></details> | 12 pages, 3 figures |"
    )


# --- properties: hostile text generated, the rendered HTML checked -----------------------------

FRAGMENTS = [
    "[", "]", "(", ")", "!", "<", ">", "&", "#", ";", "\\", "`", "|", "*", "_", "~", ":", "/",
    "\"", "'", "=", " ", "x", "é", "&lt;", "&#60;", "&amp;", "&#x3C;", "https://evil.example/",
    "www.evil.example", "a@evil.example", "javascript:", "<img src=x>", "<details>", "</details>",
    "</p>", "<summary>", "![", "](", "[ref]: ", "<https://evil.example>", "<!--", "-->", "\n",
    "\\[", "\\]", "\\\\", "``", "\t", "mailto:", "<a href=x>", "</a>",
]  # fmt: skip
hostile = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(st.characters(codec="utf-8"), max_size=3), max_size=24
).map("".join)
# Text whose markdown reading is only escapes and entities: what it shows is what was written.
# (No emphasis marks, no '%' or ':' that an autolink would decode or take in as written.)
plain = hostile.map(lambda text: re.sub(r"[*_~%:\x00]", "", text))


@settings(max_examples=400, deadline=None)
@given(title=hostile, abstract=hostile, comment=st.none() | hostile)
@pytest.mark.slow
def test_no_hostile_text_renders_as_markup(title, abstract, comment):
    assert_safe(stored_paper(title=title, abstract=abstract, comment=comment))


@settings(max_examples=300, deadline=None)
@given(title=plain, abstract=plain)
@pytest.mark.slow
def test_what_is_shown_is_what_was_written(title, abstract):
    shown_title, shown_abstract, _ = assert_safe(stored_paper(title=title, abstract=abstract))
    assert shown_title == collapse(title).replace("\x00", "\ufffd")
    assert shown_abstract == collapse(abstract).replace("\x00", "\ufffd")
