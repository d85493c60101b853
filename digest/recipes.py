"""A digest's recipe: what Renderer.edition takes, papers by id, kept as JSON.

Every digest is made into its recipe (`editions.EditionBuilder`) and rendered from it: a shared
one when planned, a personal one when its message is sent, from its order. The version before
orders stored personal digests as recipes; a queue it planned is still rendered from them
(`bodies.Bodies`), into the same bytes. The vote links' builder is not data: a recipe records
whether the body has them, and the renderer rebuilds it from the settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.utils import parseaddr
from typing import Any

from .config import Settings
from .models import Paper
from .render import Papers, Rendered, Renderer, make_environment

FORMAT = 1  # the recipes' JSON layout; a stored recipe of another is refused, by its edition

# A section as a recipe keeps it: its title, and each paper's id with its "Also in" tags.
Section = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]


class BadRecipe(ValueError):
    """A stored recipe cannot be read (another format, or damaged JSON)."""


def renderer_for(settings: Settings, abstracts: str) -> Renderer:
    """Return the renderer of digests in one abstracts mode, as planning and sending use it."""
    return Renderer(
        make_environment(settings.templates),
        settings.name,
        settings.archive_url,
        parseaddr(settings.sender)[1],
        abstracts,
    )


@dataclass(frozen=True)
class Recipe:
    """Renderer.edition's arguments for one digest, its papers by id (see Recipe.of)."""

    abstracts: str
    sections: tuple[Section, ...]
    day: date
    notes: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    browser_url: str | None = None
    more_urls: Mapping[str, str] = field(default_factory=dict)
    since: date | None = None
    feedback: bool = False  # 👍 / 👎 links on each paper
    own_more: Mapping[str, str] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)
    highlights: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_per_topic: int | None = None
    picks: int = 0  # the first sections are the top picks
    totals: Mapping[str, int] = field(default_factory=dict)  # a cut section's papers in all

    @classmethod
    def of(
        cls,
        abstracts: str,
        sections: Papers,
        day: date,
        notes: Sequence[str] = (),
        topics: Sequence[str] = (),
        browser_url: str | None = None,
        more_urls: Mapping[str, str] | None = None,
        *,
        since: date | None = None,
        feedback: Callable[[str, str, str], str] | None = None,
        own_more: Mapping[str, str] | None = None,
        reasons: Mapping[str, str] | None = None,
        highlights: Mapping[str, Collection[str]] | None = None,
        max_per_topic: int | None = None,
        picks: int = 0,
        totals: Mapping[str, int] | None = None,
    ) -> Recipe:
        """Return the recipe of Renderer.edition called with these arguments (its own
        arguments, and the renderer's abstracts mode)."""
        shown = {paper.id for _, papers in sections for paper, _ in papers}
        return cls(
            abstracts,
            tuple(
                (title, tuple((paper.id, tuple(tags)) for paper, tags in papers))
                for title, papers in sections
            ),
            day,
            tuple(notes),
            tuple(topics),
            browser_url,
            dict(more_urls or {}),
            since,
            feedback is not None,
            dict(own_more or {}),
            {k: v for k, v in (reasons or {}).items() if k in shown},
            {k: tuple(sorted(v)) for k, v in (highlights or {}).items() if k in shown and v},
            max_per_topic,
            picks,
            dict(totals or {}),
        )

    @property
    def papers(self) -> int:
        """Return how many papers the digest lists (Rendered.papers)."""
        return sum(len(items) for _, items in self.sections)

    def paper_ids(self) -> set[str]:
        """Return the ids of the papers the digest lists."""
        return {paper_id for _, items in self.sections for paper_id, _ in items}

    def render(
        self,
        renderer: Renderer,
        papers: Mapping[str, Paper],
        feedback: Callable[[str, str, str], str] | None,
    ) -> Rendered:
        """Render the digest with these papers (by id; one missing is left out) and, if the
        recipe has vote links, this builder of them (Links.feedback)."""
        sections: list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]] = []
        for title, items in self.sections:
            found = [(papers[i], tags) for i, tags in items if i in papers]
            if found:
                sections.append((title, found))
        return renderer.edition(
            sections,
            self.day,
            list(self.notes),
            list(self.topics),
            self.browser_url,
            dict(self.more_urls),
            since=self.since,
            feedback=feedback if self.feedback else None,
            own_more=self.own_more,
            reasons=self.reasons,
            highlights=self.highlights,
            max_per_topic=self.max_per_topic,
            picks=self.picks,
            totals=self.totals,
        )

    def dumps(self) -> str:
        """Return the recipe as compact JSON."""
        found: dict[str, Any] = {
            "format": FORMAT,
            "abstracts": self.abstracts,
            "day": self.day.isoformat(),
            "sections": self.sections,  # tuples: JSON arrays
        }
        optional: dict[str, Any] = {
            "notes": self.notes,
            "topics": self.topics,
            "browser_url": self.browser_url,
            "more_urls": self.more_urls,
            "since": self.since.isoformat() if self.since else None,
            "feedback": self.feedback,
            "own_more": self.own_more,
            "reasons": self.reasons,
            "highlights": self.highlights,
            "picks": self.picks,
            "totals": self.totals,
        }
        found.update((k, v) for k, v in optional.items() if v)  # an empty one: left out
        if self.max_per_topic is not None:  # (0 is a cap too)
            found["max_per_topic"] = self.max_per_topic
        return json.dumps(found, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str, edition_id: int = 0) -> Recipe:
        """Return the recipe stored as `text`; raise BadRecipe (naming the edition) if it is
        of another format or damaged."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise BadRecipe(
                    f"edition {edition_id}: its recipe is of format {data.get('format')!r}, "
                    f"this digest reads format {FORMAT}: send the queue with the version that "
                    "planned it"
                )
            since = data.get("since")
            return cls(
                data["abstracts"],
                tuple(
                    (title, tuple((paper_id, tuple(tags)) for paper_id, tags in items))
                    for title, items in data["sections"]
                ),
                date.fromisoformat(data["day"]),
                tuple(data.get("notes", ())),
                tuple(data.get("topics", ())),
                data.get("browser_url"),
                data.get("more_urls", {}),
                date.fromisoformat(since) if since else None,
                bool(data.get("feedback")),
                data.get("own_more", {}),
                data.get("reasons", {}),
                {k: tuple(v) for k, v in data.get("highlights", {}).items()},
                data.get("max_per_topic"),
                int(data.get("picks", 0)),
                {k: int(v) for k, v in data.get("totals", {}).items()},
            )
        except BadRecipe:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise BadRecipe(f"edition {edition_id}: its recipe cannot be read ({exc})") from exc
