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
# An '&' that could start a character reference ("&lt", "&#60;"); a bare "& " is left as it
# is, as arXiv's texts (and the original archives) have it.
_ENTITY_RE = re.compile(r"&(?=[A-Za-z0-9#])")
_PIPE_RE = re.compile(r"(\\*)\|")


def cell(text: str | None) -> str:
    """Make text safe for one table cell: one line, '|' escaped, no HTML markup."""
    return _escape(collapse(text))


def _escape(text: str) -> str:
    text = _ENTITY_RE.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    # Backslashes right before a pipe are doubled so that the pipe's own escape stands.
    return _PIPE_RE.sub(lambda m: m.group(1) * 2 + "\\|", text)


def title_cell(paper: Paper) -> str:
    """Return the bold title linked to the paper's newest version."""
    # A run of backslashes before a bracket or the end is doubled, so none escapes the link.
    title = re.sub(r"(\\+)(?=[\[\]]|$)", lambda m: m.group(1) * 2, cell(paper.title))
    title = title.replace("[", "\\[").replace("]", "\\]")
    # arXiv ids never need escaping; a hostile one must not end the link or the cell.
    url = "https://arxiv.org/abs/" + quote(f"{paper.id}v{paper.version}", safe="/.-")
    return f"**[{title}]({url})**"


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


def render_archive(
    title: str, day: date, limit: int, sections: Sequence[tuple[str, Sequence[Paper]]]
) -> str:
    """Return the whole archive document."""
    parts = [
        f"# {title}\n"
        "The project automatically fetches the latest papers from arXiv based on keywords.\n\n"
        "The subheadings in the README file represent the search keywords.\n\n"
        "Only the most recent articles for each keyword are retained, up to a maximum of "
        f"{limit} papers.\n\n"
        "You can click the 'Watch' button to receive daily email notifications.\n\n"
        f"Last update: {day.isoformat()}\n\n"
    ]
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
