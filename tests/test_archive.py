"""The markdown archive: exact rows, escaping, and the whole document."""

from __future__ import annotations

import html
import re
from datetime import date
from pathlib import Path

import pytest
from helpers.builders import stored_paper
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from digest.archive import cell, comment_cell, render_archive, row, save_archive
from digest.models import collapse

paper = stored_paper


def test_row_escapes_pipes_markup_and_entities_exactly():
    tricky = paper(
        title="Sparse | Dense <Retrieval> & More",
        abstract="We bound $|S_i|$ by \\|x\\|_2\n  and use <b>bold</b> & AT&amp;T.",
        comment="Accepted at <Conf> | 10 pages & appendix",
    )
    expected = (
        r"| **[Sparse \| Dense &lt;Retrieval&gt; & More](https://arxiv.org/abs/2501.00001v2)** "
        r"| 2025-01-02 | <details><summary>Show</summary><p>We bound $\|S_i\|$ by \\\|x\\\|_2 "
        r"and use &lt;b&gt;bold&lt;/b&gt; & AT&amp;amp;T.</p></details> "
        r"| <details><summary>Accep...</summary><p>Accepted at &lt;Conf&gt; \| 10 pages "
        r"& appendix</p></details> |"
    )
    assert row(tricky) == expected


def test_comment_cell_follows_the_twenty_character_rule():
    assert comment_cell(None) == ""
    assert comment_cell("12 pages") == "12 pages"
    assert comment_cell("x" * 20) == "x" * 20
    assert comment_cell("x" * 21) == (
        f"<details><summary>xxxxx...</summary><p>{'x' * 21}</p></details>"
    )
    assert comment_cell("This paper is long enough") == (
        "<details><summary>This ...</summary><p>This paper is long enough</p></details>"
    )  # five characters exactly, the space included, as the reference archive has it
    assert comment_cell("a|b<c>d\nefghijklmnopqrstu") == (
        r"<details><summary>a\|b&lt;c...</summary>"
        r"<p>a\|b&lt;c&gt;d efghijklmnopqrstu</p></details>"
    )


def test_long_title_with_brackets_stays_one_link():
    long = paper(title="[Re] " + "Very Long Title " * 30 + "\n  wrapped")
    text = row(long)
    assert text.startswith(r"| **[\[Re\] Very Long Title")
    assert "\n" not in text
    assert "Title wrapped](https://arxiv.org/abs/2501.00001v2)** |" in text


def test_document_layout(tmp_path: Path):
    papers = [paper(id="2501.00002", title="Newer"), paper(title="Older", version=1)]
    text = render_archive(
        "Daily Papers", date(2025, 12, 28), 100, [("Topic A", papers), ("Topic B", [])]
    )
    lines = text.split("\n")
    assert lines[:12] == [
        "# Daily Papers",
        "The project automatically fetches the latest papers from arXiv based on keywords.",
        "",
        "The subheadings in the README file represent the search keywords.",
        "",
        "Only the most recent articles for each keyword are retained, up to a maximum of 100 "
        "papers.",
        "",
        "You can click the 'Watch' button to receive daily email notifications.",
        "",
        "Last update: 2025-12-28",
        "",
        "## Topic A",
    ]
    assert lines[12:14] == [
        "| **Title** | **Date** | **Abstract** | **Comment** |",
        "| --- | --- | --- | --- |",
    ]
    assert lines[14].startswith("| **[Newer](")
    assert lines[15].startswith("| **[Older](https://arxiv.org/abs/2501.00001v1)")
    assert lines[16:] == ["", "## Topic B", lines[12], lines[13], "", ""]


def test_save_archive_reports_changes_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "archive" / "README.md"
    assert save_archive(target, "one\n") is True
    assert save_archive(target, "one\n") is False
    assert save_archive(target, "two\n") is True
    assert target.read_text() == "two\n"
    assert [p.name for p in target.parent.iterdir()] == ["README.md"]


# --- properties: any paper text gives a row of exactly four cells ------------------------------

MD = MarkdownIt("commonmark").enable("table")


def gfm_cells(line: str) -> list[str]:
    """Split a table row the way GitHub's cmark-gfm does (a backslash escapes the next char)."""
    cells, current, i = [], "", 0
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            current += body[i : i + 2]
            i += 2
            continue
        if char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
        i += 1
    if current.strip():
        cells.append(current)
    return cells


text_st = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(lambda c: c != "\x00"),
    max_size=80,
) | st.sampled_from(
    [
        "|",
        "\\|",
        "\\\\|",
        "a|b\\",
        "<script>x</script>",
        "&amp;",
        "$|S|$",
        "\\\\",
        "a\\",
        "]()[",
        "\\",
        "&#60;",
        "x\n|\ny",
    ]
)


@settings(max_examples=300, deadline=None)
@given(title=text_st, abstract=text_st, comment=st.none() | text_st)
@pytest.mark.slow
def test_any_paper_text_gives_four_cells(title, abstract, comment):
    line = row(paper(title=title, abstract=abstract, comment=comment))
    assert "\n" not in line and "\r" not in line
    assert len(gfm_cells(line)) == 4
    rendered = MD.render(
        "| **Title** | **Date** | **Abstract** | **Comment** |\n| --- | --- | --- | --- |\n"
        + line
        + "\n"
    )
    body_rows = re.findall(r"<tr>(.*?)</tr>", rendered, re.S)
    assert len(body_rows) == 2
    assert body_rows[1].count("<td") == 4
    assert body_rows[1].count('<a href="https://arxiv.org/abs/2501.00001v2">') == 1


@settings(max_examples=300, deadline=None)
@given(text=text_st)
@pytest.mark.slow
def test_cell_keeps_the_text_and_adds_no_markup(text):
    escaped = cell(text)
    assert "<" not in escaped and ">" not in escaped
    # Undo the backslash escapes as CommonMark reads them, then the HTML escape: the collapsed
    # text comes back.
    unescaped = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped)
    assert html.unescape(unescaped) == collapse(text)
