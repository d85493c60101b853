"""The cumulative markdown archive: one table per keyword, written atomically."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from urllib.parse import quote

from .files import write_atomically
from .models import Paper, collapse

HEADER = "| **Title** | **Date** | **Abstract** | **Comment** |\n| --- | --- | --- | --- |\n"
# What the text may hold that markdown would read as markup, escaped one character at a time
# (a GitHub README renders it: CommonMark with the GFM table, strikethrough and autolinks).
# '[' and ']' (links, images, reference links), '`' (code spans) and '|' (the cell's end) take a
# backslash; '<' and '>' (raw HTML, <autolinks>) and an '&' that could start a character
# reference ("&lt", "&#60;") become entities. A bare "& " is left as it is, as arXiv's texts (and
# the original archives) have it; emphasis stays, as it can neither link nor hide anything.
_MARKUP = {"[": "\\[", "]": "\\]", "`": "\\`", "|": "\\|", "<": "&lt;", ">": "&gt;"}
_ESCAPE_RE = re.compile(r"(\\{2,}+|\\(?=[!-/:-@\[-`{-~]|$))|&(?=[A-Za-z0-9#])|[\[\]`|<>]")


def _sub(match: re.Match[str]) -> str:
    if match.group(1):
        # Backslashes that markdown would read as escapes (two in a row, or one before ASCII
        # punctuation or the end, where the format's own markup follows): doubled, each shows
        # as itself. A lone one before a letter (\textit) is shown as it is.
        return match.group(1) * 2
    if match.group() == "&":
        return "&amp;"
    return _MARKUP[match.group()]


def cell(text: str | None) -> str:
    """Make text safe for one table cell: one line, no markup of its own (links, images, HTML,
    code), '|' escaped; text without such characters is left exactly as it is."""
    return _escape(collapse(text))


def _escape(text: str) -> str:
    return _ESCAPE_RE.sub(_sub, text)


def title_cell(paper: Paper) -> str:
    """Return the bold title linked to the paper's newest version."""
    # arXiv ids never need escaping; a hostile one must not end the link or the cell.
    url = "https://arxiv.org/abs/" + quote(f"{paper.id}v{paper.version}", safe="/.-")
    return f"**[{cell(paper.title)}]({url})**"


def comment_cell(comment: str | None) -> str:
    """Return the comment, folded into a <details> block when longer than 20 characters."""
    comment = collapse(comment)
    if len(comment) <= 20:
        return cell(comment)
    # The summary is the first five characters exactly, a trailing space included.
    return f"<details><summary>{_escape(comment[:5])}...</summary><p>{cell(comment)}</p></details>"


def row(paper: Paper) -> str:
    """Return the table row of one paper."""
    abstract = f"<details><summary>Show</summary><p>{cell(paper.abstract)}</p></details>"
    updated = paper.updated.date().isoformat()
    return f"| {title_cell(paper)} | {updated} | {abstract} | {comment_cell(paper.comment)} |"


INTRO = (  # the introduction of the archives digest continues, kept as they wrote it
    "The project automatically fetches the latest papers from arXiv based on keywords.\n\n"
    "The subheadings in the README file represent the search keywords.\n\n"
    "Only the most recent articles for each keyword are retained, up to a maximum of "
    "{rows} papers.\n\n"
    "You can click the 'Watch' button to receive daily email notifications."
)


def render_archive(
    title: str,
    day: date,
    limit: int,
    sections: Sequence[tuple[str, Sequence[Paper]]],
    intro: str | None = None,
) -> str:
    """Return the whole archive document; `intro` ([digest] archive_intro, markdown, "{rows}"
    standing for the papers kept per keyword) replaces the introduction of the original."""
    opening = (INTRO if intro is None else intro.strip()).replace("{rows}", str(limit))
    parts = [f"# {title}\n{opening}\n\nLast update: {day.isoformat()}\n\n"]
    for keyword, papers in sections:
        parts.append(f"## {keyword}\n{HEADER}")
        parts.extend(row(p) + "\n" for p in papers)
        parts.append("\n")
    return "".join(parts)


class ArchiveError(Exception):
    """The archive file cannot be written (a bad path, no permission, a full disk)."""


def save_archive(path: Path, text: str) -> bool:
    """Replace the archive file in one step (fsynced); return False when nothing changed."""
    try:
        return write_atomically(path, text.encode("utf-8"), durable=True)
    except OSError as exc:
        raise ArchiveError(
            f"cannot write {path} ({exc.strerror or exc}); the previous archive is intact and "
            "the history is safe: fix the path or the disk, then `digest archive` writes it"
        ) from None
