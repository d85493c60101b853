"""How a digest reads: its sections, each paper's labels and abstract, subject, preheader."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, time

from . import latex
from .models import Paper

MAX_AUTHORS = 5
SNIPPET = 300  # characters: about two sentences (a little more to end one)
SUBJECT_MAX = 100  # characters; inboxes show far fewer, so the count and first topic lead
ABSTRACTS = ("snippet", "full", "none")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[$\\])")


@dataclass(frozen=True, slots=True)
class PaperItem:
    """A paper as a digest shows it: its other matched topics, and the abstract shown."""

    paper: Paper
    tags: tuple[str, ...]
    abstract: str
    cut: bool = False  # the abstract shown is shorter than the paper's
    because: str | None = None  # the title of the liked paper that lifted it (ranking)
    words: frozenset[str] = frozenset()  # the section's words as the paper spells them

    @property
    def title(self) -> str:
        """Return the title as people read it (its LaTeX as Unicode text)."""
        return latex.text(self.paper.title)

    @property
    def authors(self) -> str:
        """Return the author list, shortened after a few names."""
        names = list(self.paper.authors)
        if len(names) > MAX_AUTHORS:
            return ", ".join(names[:MAX_AUTHORS]) + f" et al. ({len(names)} authors)"
        return ", ".join(names) or "Unknown authors"

    @property
    def reference(self) -> str:
        """Return the arXiv id with its version, as arXiv writes it."""
        return f"arXiv:{self.paper.id}v{self.paper.version}"

    @property
    def categories(self) -> str:
        """Return the primary category, then the cross-lists."""
        cross = [c for c in self.paper.categories if c != self.paper.primary_category]
        return self.paper.primary_category + (f" (also {', '.join(cross)})" if cross else "")

    @property
    def revised(self) -> bool:
        """Tell whether this is a new version of a paper announced before."""
        return self.paper.version > 1

    @property
    def label(self) -> str:
        """Return 'New submission', or 'Revised (v3, first submitted 12 May 2001)'."""
        if not self.revised:
            return "New submission"
        return f"Revised (v{self.paper.version}, first submitted {long_date(self.paper.published)})"

    @property
    def details(self) -> list[tuple[str, str, str | None]]:
        """Return the comment, journal reference and DOI present: (label, text, link)."""
        p = self.paper
        found: list[tuple[str, str | None, str | None]] = [
            ("Comment", p.comment, None),
            ("Journal ref", p.journal_ref, None),
        ]
        found.append(("DOI", p.doi, f"https://doi.org/{p.doi}" if p.doi else None))
        return [(label, text, link) for label, text, link in found if text]


def long_date(day: date) -> str:
    """Return a date as people read it: '27 November 2026'."""
    return f"{day.day} {day:%B %Y}"


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def part_of_day(at: time) -> str:
    """Return when in the day a time falls: morning (5-12), afternoon, evening (18-22), night."""
    hour = at.hour
    if 5 <= hour < 12:
        return "morning"
    return "afternoon" if 12 <= hour < 18 else "evening" if 18 <= hour < 22 else "night"


def cadence(send_at: time, zone: str, frequency: str = "daily", weekday: int | None = None) -> str:
    """Return when a reader's digest comes, from [digest] send_at and their schedule:
    'every morning at 07:00 (Europe/Paris)', 'every Monday evening at 19:30 (UTC)'."""
    when = f"{part_of_day(send_at)} at {send_at:%H:%M} ({zone})"
    if frequency == "weekly" and weekday is not None:
        return f"every {WEEKDAYS[weekday]} {when}"
    return f"every {when}"


@functools.lru_cache(maxsize=4_096)  # a paper's abstract is cut alike in many digests
def snippet(text: str, limit: int = SNIPPET) -> tuple[str, bool]:
    """Return the first sentences of text up to about limit characters, and whether it was cut.

    Whole sentences when they fit (at most two, and a little over the limit is fine); else
    the text is cut on a word.
    """
    if len(text) <= limit * 1.15:
        return text, False
    sentences = _SENTENCE_END.split(text)
    shown = sentences[0]
    if len(sentences) > 1 and len(shown) + len(sentences[1]) < limit * 1.15:
        shown += " " + sentences[1]
    if len(shown) > limit * 1.15:
        shown = shown[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"
    return shown, True


def abstract_of(paper: Paper, mode: str, limit: int | None = None) -> tuple[str, bool]:
    """Return the abstract to show (its LaTeX as Unicode text) and whether it was cut.

    `mode` is the operator's choice ('snippet', 'full' or 'none'); `limit`, when set, is a
    shorter length forced by the email's size.
    """
    if mode == "none" or limit == 0:
        return "", False
    readable = latex.text(paper.abstract)  # before cutting: a cut never splits a formula
    if limit is None:
        return (readable, False) if mode == "full" else snippet(readable)
    return snippet(readable, limit)


def subject(count: int, topics: Sequence[tuple[str, int]], limit: int = SUBJECT_MAX) -> str:
    """Return the subject: the count and the topics, e.g. '12 new · Graph Neural Network (7), …'.

    Topics that do not fit are counted ('+ 3 more topics'); a name too long alone is cut.
    """
    head = f"{count} new · "
    if len(topics) == 1:
        return head + _cut(topics[0][0], limit - len(head))
    names = [f"{name} ({n})" for name, n in topics]
    for shown in range(len(names), 0, -1):
        text = head + ", ".join(names[:shown]) + _more(len(names) - shown)
        if len(text) <= limit:
            return text
    name, n = topics[0]
    room = limit - len(head) - len(f" ({n})") - len(_more(len(names) - 1))
    return f"{head}{_cut(name, room)} ({n}){_more(len(names) - 1)}"


def _more(rest: int) -> str:
    return f" + {rest} more topic{'s' if rest != 1 else ''}" if rest else ""


def preheader(titles: Sequence[str], limit: int = 140) -> str:
    """Return the inbox preview line: the first titles, shortened to limit characters."""
    return _cut(" · ".join(titles), limit)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 1)].rsplit(" ", 1)[0].rstrip(" ,;:·") + "…"


def sections_for(
    keys: tuple[str, ...],
    new_by_key: dict[str, list[str]],
    earlier: dict[str, set[str]],
    papers: dict[str, Paper],
    names: dict[str, str],
    followed: Collection[str] = (),
) -> list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]]:
    """Group the news of a keyword set: each paper once, under its first keyword, with tags.

    A paper already seen before this cycle under one of the keywords its reader follows
    (`followed`, those with no news today too; else these) is not news to them.
    """
    sections, placed = [], set()
    seen_under = set(followed) | set(keys)
    for key in keys:
        items = []
        for paper_id in new_by_key[key]:
            if paper_id in placed or earlier.get(paper_id, set()) & seen_under:
                continue
            placed.add(paper_id)
            tags = tuple(names[k] for k in keys if k != key and paper_id in new_by_key[k])
            items.append((papers[paper_id], tags))
        if items:
            sections.append((names[key], items))
    return sections
