"""Render digests (subject, text, HTML) and pages from the jinja2 templates."""

from __future__ import annotations

import functools
import re
import secrets
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import css_inline
import jinja2
from markupsafe import Markup, escape

from . import latex
from .models import Paper
from .presentation import SNIPPET, PaperItem, abstract_of, long_date, preheader, subject

# Gmail clips HTML beyond 102 KB; stay clear of it, leaving room for personal details.
MAX_HTML_BYTES = 100_000
# Abstract lengths tried in turn, then paper caps per topic, until the HTML fits.
SNIPPET_STEPS = (SNIPPET, 200, 0)  # after the operator's own choice
CAP_STEPS = (100, 50, 25, 10, 5, 2, 1)

# An email's vote links carry one placeholder per paper and vote, filled in per recipient by
# mail.Composer: the marker (the edition's placeholders["vote_token"]), the vote, the paper id.
VOTE_TOKEN = "vote_token"


def vote_slot(marker: str, paper_id: str, vote: str) -> str:
    """Return the placeholder of a recipient's vote token on a paper: 'MARKER_up_2511.01234_'."""
    return f"{marker}_{vote}_{paper_id}_"


def vote_slots(marker: str) -> str:
    """Return the regular expression of vote_slot's placeholders (groups 'vote', 'paper')."""
    return re.escape(marker) + r"_(?P<vote>up|down)_(?P<paper>[A-Za-z0-9./-]{1,64})_"


_HEAD_RE = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_CHARSET_RE = re.compile(r"""<meta\s+charset=["']?utf-8["']?\s*/?>\s*""", re.IGNORECASE)


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
        autoescape=lambda name: name is not None and name.endswith((".html", ".html.j2", ".atom")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.filters["readable"] = latex.text  # a title or abstract's LaTeX as Unicode text
    env.filters["highlight"] = highlight
    return env


def highlight(text: str, words: Collection[str]) -> Markup | str:
    """Return text (HTML-escaped) with these words, whole and in any case, in bold."""
    if not words or not text:
        return text
    pieces: list[Markup] = []
    last = 0
    for match in _words_pattern(frozenset(words)).finditer(text):
        pieces += [escape(text[last : match.start()]), Markup("<b>{}</b>").format(match.group())]
        last = match.end()
    return Markup("").join([*pieces, escape(text[last:])])


@functools.lru_cache(maxsize=4_096)
def _words_pattern(words: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@functools.lru_cache(maxsize=16_384)
def wrap(text: str, indent: str = "") -> str:
    """Wrap text at 78 columns (remembered: a paper's fields recur in many digests)."""
    return textwrap.fill(
        text,
        78,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def charset_first(html: str) -> str:
    """Return the HTML with <meta charset="utf-8"> as the first element of its <head>.

    css-inline puts the <style> it keeps first; a charset after 1,024 bytes is too late
    (HTML's encoding sniffing stops there).
    """
    head = _HEAD_RE.search(html)
    if head is None:
        return html
    meta = _CHARSET_RE.search(html, head.end())
    if meta is not None and not html[head.end() : meta.start()].strip():
        return html
    if meta is not None:
        html = html[: meta.start()] + html[meta.end() :]
    return f'{html[: head.end()]}<meta charset="utf-8">{html[head.end() :]}'


@dataclass(slots=True)
class Section:
    """One topic's papers in a digest, and how many more it has than are shown."""

    keyword: str
    anchor: str
    items: list[PaperItem]
    hidden: int = 0

    @property
    def total(self) -> int:
        """Return how many new papers the topic has."""
        return len(self.items) + self.hidden


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest body with placeholders for what differs per subscriber."""

    subject: str
    text: str
    html: str
    papers: int
    placeholders: dict[str, str] = field(default_factory=dict)


Papers = Sequence[tuple[str, Sequence[tuple[Paper, tuple[str, ...]]]]]


class Ranking(NamedTuple):
    """What ranking adds to a digest: reasons and highlighted words by paper, the cap."""

    reasons: Mapping[str, str]
    highlights: Mapping[str, Collection[str]]
    max_per_topic: int | None
    totals: Mapping[str, int]  # by section title: its papers before a cut
    picks: int = 0  # the first sections, the top picks: not capped by max_per_topic


class Renderer:
    """Render digest editions, the HTML part within the size Gmail shows unclipped."""

    def __init__(
        self,
        env: jinja2.Environment,
        list_name: str,
        archive_url: str | None = None,
        owner: str = "",
        abstracts: str = "snippet",
    ):
        self.env = env
        self.list_name = list_name
        self.archive_url = archive_url
        self.owner = owner
        self.abstracts = abstracts
        self.inliner = css_inline.CSSInliner(keep_at_rules=True)

    def edition(
        self,
        sections: Papers,
        day: date,
        notes: Sequence[str] = (),
        topics: Sequence[str] = (),
        browser_url: str | None = None,
        more_urls: dict[str, str] | None = None,
        max_bytes: int = MAX_HTML_BYTES,
        since: date | None = None,
        feedback: Callable[[str, str, str], str] | None = None,
        own_more: Mapping[str, str] | None = None,
        reasons: Mapping[str, str] | None = None,
        highlights: Mapping[str, Collection[str]] | None = None,
        max_per_topic: int | None = None,
        picks: int = 0,
        totals: Mapping[str, int] | None = None,
    ) -> Rendered:
        """Render one digest; if its HTML is too large, shorten abstracts, then cap topics.

        `topics` are the keywords the reader follows (the footer names them); `browser_url`
        is this email on the web and `more_urls` where each topic's full list is (the
        reading room's day page, or arXiv's listing). The text part always lists every
        paper, since no client clips it. `feedback(paper_id, vote, token)` builds a vote link
        (Links.feedback): each paper gets 👍 / 👎 links, their tokens placeholders. `own_more`
        gives the reader's own topics' sections (by title) their full list: the reader's page of
        them (the `mine_url` placeholder, personal) followed by this query. `reasons` names,
        by paper id, the liked paper that lifted it; `highlights` the words of its section's
        topic it has (bold in HTML); `max_per_topic` caps each section in both parts (but the
        top picks), each cut section then saying how many more and where. The first `picks`
        sections (the top picks) repeat papers of the others: they are not counted. `totals`
        gives, by title, how many papers a section cut short already has in all.
        """
        totals = dict(totals or {})
        ranked = Ranking(reasons or {}, highlights or {}, max_per_topic, totals, picks)
        count = sum(totals.get(name, len(papers)) for name, papers in sections[picks:])
        personal = ("greeting", "unsubscribe_url", "manage_url", "email")
        placeholders = {
            k: f"DIGEST{k.upper()}{secrets.token_hex(8)}"
            for k in personal + (("mine_url",) if own_more else ())
        }
        vote_url: Callable[[str, str], str] | None = None
        if feedback is not None:
            marker = placeholders[VOTE_TOKEN] = f"DIGESTVOTE{secrets.token_hex(8)}"
            vote_url = partial(_vote_url, feedback, marker)
        more_urls = dict(more_urls or {})
        for title, query in (own_more or {}).items():
            more_urls.setdefault(title, placeholders["mine_url"] + query)
        context: dict[str, Any] = {
            "list_name": self.list_name,
            "owner": self.owner,
            "day": day,
            "day_text": f"{day:%A} {long_date(day)}",
            "period": f"since {long_date(since)}" if since else f"for {day:%A} {long_date(day)}",
            "count": count,
            "topics": list(topics) or [name for name, _ in sections],
            "archive_url": self.archive_url,
            "browser_url": browser_url,
            "more_urls": more_urls,
            "vote_url": vote_url,
            "own_topics": list(own_more or ()),  # sections whose full list is a page of ours
            "max_per_topic": max_per_topic,  # a section longer is cut in the text part too
            **placeholders,
        }
        titles = [latex.text(p.title) for _, papers in sections for p, _ in papers[:3]]
        context["subject"] = subject(
            count, [(name, totals.get(name, len(p))) for name, p in sections[picks:]]
        )
        context["preheader"] = preheader(titles)
        full = self._sections(sections, None, None, ranked)
        text = self.env.get_template("email/digest.txt").render(
            context, sections=full, notes=list(notes)
        )
        shorter = [n for n in SNIPPET_STEPS if self.abstracts == "full" or n < SNIPPET]
        steps: list[tuple[int | None, int | None]] = [(None, None)]
        steps += [(n, None) for n in shorter if self.abstracts != "none"]
        steps += [(0, cap) for cap in CAP_STEPS]
        for limit, cap in steps:
            shown = full if limit is None else self._sections(sections, limit, cap, ranked)
            shown_notes = list(notes) + _notes(self.abstracts, limit, cap)
            html = self.env.get_template("email/digest.html").render(
                context, sections=shown, notes=shown_notes
            )
            html = charset_first(self.inliner.inline(html))
            if len(html.encode()) <= max_bytes:
                break
        subject_line = self.env.get_template("email/subject.txt").render(context)
        return Rendered(" ".join(subject_line.split()), text, html, count, placeholders)

    def _sections(
        self, sections: Papers, limit: int | None, cap: int | None, ranked: Ranking
    ) -> list[Section]:
        shown = []
        size_cap, per_topic = cap, ranked.max_per_topic
        for number, (name, papers) in enumerate(sections, 1):
            cap = size_cap
            if per_topic is not None and number > ranked.picks:
                cap = per_topic if cap is None else min(cap, per_topic)
            items = [
                PaperItem(
                    p,
                    tags,
                    *abstract_of(p, self.abstracts, limit),
                    because=ranked.reasons.get(p.id),
                    words=frozenset(ranked.highlights.get(p.id, ())),
                )
                for p, tags in papers[:cap]
            ]
            total = ranked.totals.get(name, len(papers))
            shown.append(Section(name, f"topic-{number}", items, total - len(items)))
        return shown

    def page(self, name: str, **context: Any) -> str:
        """Render a web page template."""
        return self.env.get_template(name).render(list_name=self.list_name, **context)


def _vote_url(
    feedback: Callable[[str, str, str], str], marker: str, paper_id: str, vote: str
) -> str:
    """Return a vote link whose token is the recipient's placeholder."""
    return feedback(paper_id, vote, vote_slot(marker, paper_id, vote))


def _notes(mode: str, limit: int | None, cap: int | None) -> list[str]:
    """Say what was left out to keep the HTML part unclipped."""
    notes = []
    if limit is not None and mode != "none":
        notes.append(
            "Abstracts are left out here to keep this email whole in every mail client; "
            "the plain-text version has them."
            if limit == 0
            else "Abstracts are shorter than usual here to keep this email whole in every mail "
            "client; follow a title for the full text."
        )
    if cap is not None:
        notes.append(
            f"Only the {cap} newest papers of each topic are listed here; the plain-text "
            "version lists them all."
        )
    return notes
