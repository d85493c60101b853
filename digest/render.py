"""Render digests (subject, text, HTML) and pages from the jinja2 templates."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import css_inline
import jinja2

from .models import Paper

# Gmail clips HTML beyond 102 KB; stay clear of it, leaving room for personal details.
MAX_HTML_BYTES = 100_000
MAX_AUTHORS = 5
# Abstract lengths tried in turn, then paper caps per keyword, until the HTML fits.
ABSTRACT_STEPS = (None, 1200, 600, 300, 0)
CAP_STEPS = (50, 25, 10, 5, 2, 1)


def default_templates() -> Path:
    """Return the shipped templates folder (inside the wheel, or the source checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


def make_environment(extra: Path | None = None) -> jinja2.Environment:
    """Build the jinja2 environment: operator templates first, autoescape for .html."""
    folders = [str(p) for p in (extra, default_templates()) if p is not None]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=lambda name: bool(name) and name.endswith((".html", ".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = lambda text, indent="": textwrap.fill(
        text,
        78,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return env


@dataclass(frozen=True, slots=True)
class Item:
    """A paper as shown in a digest, with the other keywords it matched."""

    paper: Paper
    tags: tuple[str, ...]
    abstract: str

    @property
    def authors(self) -> str:
        """Return the author list, shortened after a few names."""
        names = list(self.paper.authors)
        if len(names) > MAX_AUTHORS:
            return ", ".join(names[:MAX_AUTHORS]) + f" et al. ({len(names)} authors)"
        return ", ".join(names) or "Unknown authors"


@dataclass(slots=True)
class Section:
    """One keyword's papers in a digest."""

    keyword: str
    items: list[Item]
    hidden: int = 0


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest body with placeholders for what differs per subscriber."""

    subject: str
    text: str
    html: str
    papers: int
    placeholders: dict[str, str] = field(default_factory=dict)


def shorten(text: str, limit: int | None) -> str:
    """Cut text at a word boundary below limit characters, marking the cut."""
    if limit is None or len(text) <= limit:
        return text
    if limit == 0:
        return ""
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:") + " …"


class Renderer:
    """Render digest editions within the size limit."""

    def __init__(self, env: jinja2.Environment, list_name: str, archive_url: str | None = None):
        self.env = env
        self.list_name = list_name
        self.archive_url = archive_url

    def edition(
        self,
        sections: Sequence[tuple[str, Sequence[tuple[Paper, tuple[str, ...]]]]],
        day: date,
        notices: Sequence[str] = (),
        max_bytes: int = MAX_HTML_BYTES,
    ) -> Rendered:
        """Render one digest; shorten abstracts, then cap papers, until the HTML fits."""
        count = sum(len(papers) for _, papers in sections)
        placeholders = {
            k: f"DIGEST{k.upper()}{secrets.token_hex(8)}"
            for k in ("greeting", "unsubscribe_url", "email")
        }
        attempts = [(a, None) for a in ABSTRACT_STEPS] + [(0, c) for c in CAP_STEPS]
        for abstract_limit, cap in attempts:
            shown = [
                Section(
                    name,
                    [
                        Item(p, tags, shorten(p.abstract, abstract_limit))
                        for p, tags in papers[:cap]
                    ],
                    max(0, len(papers) - (cap or len(papers))),
                )
                for name, papers in sections
            ]
            notes = list(notices)
            if abstract_limit is not None:
                notes.append(
                    "Abstracts are shortened to keep this email readable in every mail "
                    "client; follow a title for the full text."
                    if abstract_limit
                    else "Abstracts are left out to keep this email "
                    "readable in every mail client; follow a title for the full text."
                )
            if cap is not None:
                notes.append(f"Only the {cap} newest papers of each topic are listed here.")
            context = {
                "list_name": self.list_name,
                "day": day.isoformat(),
                "count": count,
                "sections": shown,
                "notes": notes,
                "archive_url": self.archive_url,
                **placeholders,
            }
            html = css_inline.inline(self.env.get_template("email/digest.html").render(context))
            if len(html.encode()) <= max_bytes:
                break
        subject = " ".join(self.env.get_template("email/subject.txt").render(context).split())
        text = self.env.get_template("email/digest.txt").render(context)
        return Rendered(subject, text, html, count, placeholders)

    def page(self, name: str, **context: Any) -> str:
        """Render a web page template."""
        return self.env.get_template(name).render(list_name=self.list_name, **context)
