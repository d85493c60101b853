"""Editions as the send phase reads them: a shared body as stored, a personal one rendered
from its recipe when its message is sent."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable

from .config import Settings
from .links import Links
from .models import Paper
from .recipes import Recipe, renderer_for
from .render import Renderer
from .store import Edition, Store

log = logging.getLogger(__name__)

MAX_PAPERS = 5_000  # papers kept between recipes: a cycle's are read about once, memory stays flat


class PaperCache:
    """The papers recipes name, read from the history in bulk (a cycle's arrivals at once, the
    rest as a recipe needs them) and the most recently used kept."""

    def __init__(self, store: Store, size: int = MAX_PAPERS):
        self.store, self.size = store, size
        self.papers: OrderedDict[str, Paper] = OrderedDict()
        self.reads = 0  # queries made (for tests and the bench)

    def prefetch(self, ids: Collection[str]) -> None:
        """Read these papers in bulk (a cycle's arrivals), unless they would not all be kept."""
        missing = [paper_id for paper_id in ids if paper_id not in self.papers]
        if missing and len(ids) <= self.size:
            self.get(missing)

    def get(self, ids: Iterable[str]) -> dict[str, Paper]:
        """Return the papers with these ids that the history holds (one query for the rest)."""
        found: dict[str, Paper] = {}
        missing = []
        for paper_id in ids:
            if (paper := self.papers.get(paper_id)) is None:
                missing.append(paper_id)
            else:
                self.papers.move_to_end(paper_id)
                found[paper_id] = paper
        if missing:
            self.reads += 1
            read = self.store.papers(missing)
            found.update(read)
            self.papers.update(read)
            while len(self.papers) > self.size:
                self.papers.popitem(last=False)
        return found


class Bodies:
    """Each edition's subject, text and HTML: stored, or rendered once from its recipe with
    the renderer planning uses (rendering the same recipe again gives the same bytes)."""

    def __init__(self, settings: Settings, store: Store):
        self.settings, self.store = settings, store
        self.papers = PaperCache(store)
        self.renderers: dict[str, Renderer] = {}
        self.feedback = Links(settings.base_url).feedback
        self.rendered = 0  # recipes rendered
        self.cycles: set[int] = set()  # those whose arrivals were read ahead

    def edition(self, edition_id: int) -> Edition:
        """Return an edition with its body (a recipe's rendered now)."""
        edition = self.store.edition(edition_id)
        if edition.recipe is None:
            if not (edition.text or edition.html):  # never sent blank (see prune_recipes)
                raise ValueError(f"edition {edition_id}: its recipe was dropped after sending")
            return edition
        recipe = Recipe.loads(edition.recipe, edition_id)
        if edition.cycle_id not in self.cycles:  # most of its papers: those that arrived in it
            self.cycles.add(edition.cycle_id)
            self.papers.prefetch(self.store.arrivals_in(edition.cycle_id))
        ids = recipe.paper_ids()
        papers = self.papers.get(ids)
        if len(papers) < len(ids):
            log.warning(
                "edition %d: %d of its papers are no longer in the history; sent without them",
                edition_id,
                len(ids) - len(papers),
            )
        body = recipe.render(self.renderer(recipe.abstracts), papers, self.feedback)
        self.rendered += 1
        return Edition(edition.id, body.subject, body.text, body.html, body.placeholders)

    def renderer(self, abstracts: str) -> Renderer:
        """Return the renderer of an abstracts mode (one each)."""
        if abstracts not in self.renderers:
            self.renderers[abstracts] = renderer_for(self.settings, abstracts)
        return self.renderers[abstracts]
