"""Editions stored as recipes (as the previous version queued personal ones, and as an order
is made when sent): rendered into the bytes planning would have rendered, read back as
written, dropped once their mail is out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers.builders import stored_paper

from digest.bodies import Bodies
from digest.delivery import Delivery
from digest.links import Links
from digest.mail import Composer
from digest.recipes import BadRecipe, Recipe, renderer_for
from digest.store import Edition, Store

NOW = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)
DAY = date(2025, 11, 17)
BASE = "https://papers.example.org"
GNN = "Graph Neural Network"
OWN = 'au:"Zoë Müller" OR sparse'


def papers(count: int, words: int = 40) -> list:
    """Return papers with LaTeX, accents and long abstracts (the renderer's hard cases)."""
    return [
        stored_paper(
            id=f"2511.{i:05d}",
            version=1 + i % 3,
            title=f"Bounds on $|S_i|$ for sparse graph number {i}, à la Müller",
            authors=("Zoë Müller", "Alan Turing", *(f"Author {n}" for n in range(i % 9))),
            abstract=" ".join(
                f"word{n % 97} $\\mathcal{{O}}(n \\log n)$" for n in range(i, i + words)
            ),
            comment="12 pages" if i % 2 else None,
            published=NOW - timedelta(hours=i + 1),
            updated=NOW - timedelta(hours=i + 1),
            categories=("cs.IR", "cs.LG"),
        )
        for i in range(count)
    ]


@pytest.fixture
def store(make_settings):
    settings = make_settings()
    with Store(settings.database) as opened:
        opened.settings = settings  # type: ignore[attr-defined]  (the test's own attribute)
        yield opened


@dataclass
class Cycle:
    """A cycle being planned, whose digests a test stores."""

    store: Store
    cycle_id: int


def builder(store) -> Cycle:
    return Cycle(store, store.begin_cycle(NOW))


def arguments(found: list, cap: int | None = None) -> dict:
    """Return Renderer.edition's arguments for a digest of keyword and own-topic sections."""
    half = len(found) // 2
    sections = [
        (GNN, [(p, ()) for p in found[:half]]),
        (OWN, [(p, (GNN,) if n % 3 == 0 else ()) for n, p in enumerate(found[half:])]),
    ]
    return dict(
        sections=sections,
        day=DAY,
        notes=["arXiv had more than 100 new papers for Graph Neural Network today."],
        topics=[GNN, "your own topics"],
        browser_url=None,
        more_urls={GNN: f"{BASE}/day/2025-11-17/gnn"},
        since=DAY - timedelta(days=7),
        feedback=Links(BASE).feedback,
        own_more={OWN: Links.mine_query(DAY, DAY - timedelta(days=7))},
        reasons={found[1].id: "A liked paper on $|S_i|$", found[-1].id: "Another one"},
        highlights={found[0].id: {"sparse", "graph"}, found[-1].id: ["Müller"]},
        max_per_topic=cap,
    )


def store_both(build: Cycle, abstracts: str, args: dict) -> tuple[int, int]:
    """Store one digest rendered now (shared) and as a recipe (personal); return their ids."""
    sections, day, notes, topics = args["sections"], args["day"], args["notes"], args["topics"]
    rest = {k: v for k, v in args.items() if k not in ("sections", "day", "notes", "topics")}
    browser, more = rest.pop("browser_url"), rest.pop("more_urls")
    recipe = Recipe.of(abstracts, sections, day, notes, topics, browser, more, **rest)
    store = build.store
    papers = {paper.id: paper for _, items in sections for paper, _ in items}
    body = recipe.render(renderer_for(store.settings, abstracts), papers, rest["feedback"])
    shared = store.add_edition(
        build.cycle_id, (GNN,), body.papers, body.subject, body.text, body.html,
        body.placeholders,
    )  # fmt: skip
    return shared, store.add_recipe(build.cycle_id, (GNN,), recipe.papers, recipe.dumps())


def composed(edition: Edition) -> bytes:
    """Return the edition composed for one reader, its MIME boundary (random) made fixed."""
    message = Composer(edition, "Papers <papers@example.org>", "Daily Papers").compose(
        email="zoe@example.org",
        name="Zoë",
        message_id="<1@example.org>",
        unsubscribe_url=f"{BASE}/u/1",
        date=NOW,
        manage_url=f"{BASE}/m/1",
        page_unsubscribe_url=f"{BASE}/p/1",
        vote_token=lambda paper_id, vote: f"tok.{vote}.{paper_id}",
        mine_url=f"{BASE}/mine?token=t",
    )
    return re.sub(rb"=_digest_[0-9a-f]{24}", b"=_digest_", message)


@pytest.mark.parametrize(
    ("abstracts", "count", "words", "cap"),
    [
        ("snippet", 8, 40, None),
        ("full", 8, 40, 2),  # ranking's cap per topic
        ("none", 5, 10, None),
        ("full", 160, 120, None),  # past Gmail's size: abstracts cut, then topics capped
    ],
)
def test_a_personal_edition_sent_is_byte_for_byte_the_body_planning_would_render(
    store, abstracts, count, words, cap
):
    found = papers(count, words)
    store.record_papers(found)
    first, second = store_both(builder(store), abstracts, arguments(found, cap))
    stored = store.edition(second)
    assert stored.recipe is not None and (stored.subject, stored.text, stored.html) == ("", "", "")
    assert store.edition(first).recipe is None and store.edition(first).html  # rendered now
    bodies = Bodies(store.settings, store)
    shared, personal = bodies.edition(first), bodies.edition(second)
    # What Renderer.edition gives these arguments, called as planning called it before recipes.
    args = arguments(found, cap)
    direct = renderer_for(store.settings, abstracts).edition(args.pop("sections"), **args)
    before = Edition(0, direct.subject, direct.text, direct.html, direct.placeholders)
    assert personal.placeholders.keys() == shared.placeholders.keys() >= {"mine_url"}
    assert composed(personal) == composed(shared) == composed(before)
    assert b"Because you liked" in composed(personal) and b"tok.up." in composed(personal)
    if count > 100:  # the size loop ran, and ran alike
        assert "Only the" in personal.html and len(personal.html.encode()) <= 100_000
    # The recipe is a small fraction of the body it stands for.
    assert len(stored.recipe) * 5 < len(shared.text) + len(shared.html)


def test_a_recipe_reads_back_as_it_was_written():
    found = papers(4)
    args = arguments(found, cap=3)
    sections = args.pop("sections")
    recipe = Recipe.of(
        "full", sections, args.pop("day"), args.pop("notes"), args.pop("topics"),
        args.pop("browser_url"), args.pop("more_urls"), **args,
    )  # fmt: skip
    text = recipe.dumps()
    assert Recipe.loads(text) == recipe
    assert recipe.papers == 4 and recipe.paper_ids() == {p.id for p in found}
    data = json.loads(text)
    assert data["format"] == 1
    assert data["sections"][0] == [GNN, [[found[0].id, []], [found[1].id, []]]]
    assert data["highlights"][found[0].id] == ["graph", "sparse"]  # sorted: the same every run
    assert "Zoë" in text and "\\u" not in text  # UTF-8, not escaped
    empty = Recipe("snippet", ((GNN, ((found[0].id, ()),)),), DAY)
    assert Recipe.loads(empty.dumps()) == empty
    capped = Recipe("snippet", (), DAY, max_per_topic=0)
    assert Recipe.loads(capped.dumps()).max_per_topic == 0
    assert set(json.loads(empty.dumps())) == {"format", "abstracts", "day", "sections"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"format": 9, "abstracts": "full", "day": "2025-11-17", "sections": []}', "format 9"),
        ('{"format": 1, "abstracts": "full", "day": "2025-11-17"}', "cannot be read"),
        ('{"format": 1, "abstracts": "full", "day": "17/11", "sections": []}', "cannot be read"),
        ("not json", "cannot be read"),
    ],
)
def test_a_recipe_of_another_format_or_damaged_is_refused_naming_its_edition(text, says):
    with pytest.raises(BadRecipe, match=f"edition 42: .*{says}"):
        Recipe.loads(text, 42)


def test_papers_are_read_in_bulk_and_kept_within_a_bound(store):
    found = papers(12, 10)
    store.record_papers(found)
    build = builder(store)
    args = arguments(found)
    ids = [store_both(build, "snippet", args)[1] for _ in range(3)]
    bodies = Bodies(store.settings, store)
    bodies.papers.size = 8
    first = bodies.edition(ids[0])
    assert bodies.papers.reads == 1  # one query for all twelve
    assert len(bodies.papers.papers) == 8  # the most recent kept, no more
    again = bodies.edition(ids[1])
    assert bodies.papers.reads == 2  # the four dropped read again, in one query
    assert (first.text.count("2511."), bodies.rendered) == (again.text.count("2511."), 2)


def test_a_cycles_arrivals_are_read_at_once_for_all_its_recipes(store):
    found = papers(12, 10)
    store.record_papers(found)
    build = builder(store)
    store.record_arrivals([p.id for p in found], build.cycle_id, NOW)
    ids = [store_both(build, "none", arguments(found[n : n + 4]))[1] for n in (0, 4, 8)]
    bodies = Bodies(store.settings, store)
    for edition_id in ids:
        bodies.edition(edition_id)
    assert bodies.papers.reads == 1 and len(bodies.papers.papers) == 12
    bodies.papers.size = 11  # a cycle with more arrivals than are kept: read as needed
    bodies.cycles.clear()
    bodies.papers.papers.clear()
    for edition_id in ids:
        bodies.edition(edition_id)
    assert bodies.papers.reads == 1 + 3


def test_a_paper_gone_from_the_history_is_left_out_not_the_email(store, caplog):
    found = papers(4, 10)
    store.record_papers(found[1:])  # the first never stored
    personal = store_both(builder(store), "snippet", arguments(found))[1]
    edition = Bodies(store.settings, store).edition(personal)
    assert found[0].id not in edition.text and found[1].id in edition.text
    assert "1 of its papers are no longer in the history" in caplog.text


def test_the_send_phase_keeps_few_composers_however_many_personal_editions(store):
    found = papers(4, 5)
    store.record_papers(found)
    build = builder(store)
    ids = [store_both(build, "none", arguments(found))[1] for _ in range(70)]
    delivery = Delivery(store.settings, store, b"a secret of thirty-two bytes or more......")
    for edition_id in ids:
        delivery.composer(edition_id)
    delivery.composer(ids[2])  # among the six dropped: rendered again
    assert delivery.bodies.rendered == 71 and len(delivery._composers) == 64
    delivery.composer(ids[-1])  # the most recent: kept
    assert delivery.bodies.rendered == 71


def test_recipes_are_dropped_once_none_of_their_messages_waits(store):
    found = papers(2, 5)
    store.record_papers(found)
    build = builder(store)
    args = arguments(found)
    shared, done = store_both(build, "none", args)
    waiting = store_both(build, "none", args)[1]
    rows = [(done, "a@example.org"), (done, "b@example.org"), (waiting, "c@example.org")]
    store.plan_messages(
        ({"cycle_id": build.cycle_id, "edition_id": e, "email": m, "name": "",
          "message_id": f"<{m}>"} for e, m in rows),
        NOW,
    )  # fmt: skip
    assert store.prune_recipes() == 0  # the cycle is not planned yet: nothing is touched
    store.mark_planned(build.cycle_id, NOW)
    assert store.prune_recipes() == 0  # every message waits
    ids = dict(store.db.execute("SELECT email, id FROM outbox"))
    store.mark_sent(ids["a@example.org"], "a@example.org", NOW)
    store.mark_skipped(ids["b@example.org"], "unsubscribed")
    store.mark_failed(ids["c@example.org"], "451 try later", permanent=False)  # still waits
    assert store.prune_recipes() == 1
    assert store.edition(done).recipe is None and store.edition(waiting).recipe is not None
    assert store.edition(shared).html  # a rendered body is kept, as before
    store.mark_failed(ids["c@example.org"], "550 no such user", permanent=True)
    assert store.prune_recipes() == 1 and store.edition(waiting).recipe is None
    with pytest.raises(ValueError, match=f"edition {done}: its recipe was dropped"):
        Bodies(store.settings, store).edition(done)  # never composed blank
