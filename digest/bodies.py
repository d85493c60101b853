"""Editions as the send phase reads them: a shared body as stored, a personal one made from
its order (or rendered from its recipe, if an earlier version planned it) when it is sent."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable

from .config import Settings
from .editions import EditionBuilder
from .links import Links
from .models import Paper
from .orders import Order, is_order
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
    """Each edition's subject, text and HTML: stored, or made once from its order by its
    cycle's builder (as planning makes a shared one), or rendered from its recipe."""

    def __init__(self, settings: Settings, store: Store):
        self.settings, self.store = settings, store
        self.papers = PaperCache(store)
        self.renderers: dict[str, Renderer] = {}
        self.feedback = Links(settings.base_url).feedback
        self.rendered = 0  # recipes rendered
        self.cycles: set[int] = set()  # those whose arrivals were read ahead
        self.builders: dict[int, EditionBuilder] = {}  # by cycle: the last one's kept

    def edition(self, edition_id: int) -> Edition:
        """Return an edition with its body (a recipe's rendered now)."""
        edition = self.store.edition(edition_id)
        if edition.recipe is None:
            if not (edition.text or edition.html):  # never sent blank (see prune_recipes)
                raise ValueError(f"edition {edition_id}: its recipe was dropped after sending")
            return edition
        if is_order(edition.recipe):
            recipe = self._recipe(Order.loads(edition.recipe, edition_id), edition.cycle_id)
            if recipe is None:
                raise ValueError(f"edition {edition_id}: its news is no longer in the history")
        else:
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

    def _recipe(self, order: Order, cycle_id: int) -> Recipe | None:
        """Make an order into its recipe with its cycle's builder (one cycle's kept)."""
        if cycle_id not in self.builders:
            self.close()  # a queue is sent cycle after cycle: memory stays flat
            self.builders[cycle_id] = EditionBuilder.for_cycle(self.settings, self.store, cycle_id)
        return self.builders[cycle_id].recipe(order)

    def close(self) -> None:
        """Free the builders' indexes (and log the stored lines they skipped)."""
        for builder in self.builders.values():
            builder.close()
        self.builders.clear()

    def renderer(self, abstracts: str) -> Renderer:
        """Return the renderer of an abstracts mode (one each)."""
        if abstracts not in self.renderers:
            self.renderers[abstracts] = renderer_for(self.settings, abstracts)
        return self.renderers[abstracts]
