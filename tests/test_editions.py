"""Edition windows and editions, on a store of three recorded cycles and a frozen clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from helpers.builders import changed, stored_paper

from digest.editions import EditionBuilder, Editions, notes
from digest.models import KeywordResult, Paper
from digest.presentation import sections_for
from digest.ranker import Ranker
from digest.readers import Due, Reader
from digest.store import PlannedEdition, Store

DAY1 = datetime(2025, 11, 16, 5, 0, tzinfo=UTC)  # Sunday, 06:00 in Paris
GNN, LLM = "graph neural network", "large language model"  # keyword keys
NAMES = {GNN: "Graph Neural Network", LLM: "Large Language Model"}


def paper(pid: str, title: str, day: int) -> Paper:
    """Return a paper updated the evening before cycle `day` (1, 2 or 3)."""
    when = DAY1 + timedelta(days=day - 1, hours=-10)
    return stored_paper(id=pid, version=1, title=title, updated=when, published=when)


G1, L1, G2, GL2, G3, L3 = (
    paper("2511.00001", "Message passing on day one", 1),
    paper("2511.00002", "Prompting on day one", 1),
    paper("2511.00003", "Graph pooling on day two", 2),
    paper("2511.00004", "Graphs meet language models", 2),  # seen under GNN on day 2 only
    paper("2511.00005", "Graph transformers on day three", 3),
    paper("2511.00006", "Language agents on day three", 3),
)
CYCLES = [  # each cycle's news per keyword key
    {GNN: [G1], LLM: [L1]},
    {GNN: [G2, GL2]},
    {GNN: [G3], LLM: [L3, GL2]},  # GL2 reaches the LLM query a day late
]


@dataclass
class Recorded:
    """A store holding three cycles, the last one being planned now."""

    settings: object
    store: Store
    ids: list[int]  # the cycles' ids, oldest first
    results: dict[str, KeywordResult]  # the last cycle's

    def editions(self, **changes) -> Editions:
        return Editions(self.builder(**changes))

    def builder(self, results: dict[str, KeywordResult] | None = None, ranker=None, **changes):
        settings = changed(self.settings, **changes) if changes else self.settings
        today = datetime.now(UTC).astimezone(settings.timezone).date()
        results = self.results if results is None else results
        news = {key: result.new for key, result in results.items()}
        return EditionBuilder(
            settings, self.store, self.ids[-1], today, news, ranker=ranker, notes=notes(results)
        )


@pytest.fixture
def recorded(make_settings) -> Iterator[Recorded]:
    """Record three daily cycles at 06:00 Paris time; the clock stays on the third."""
    settings = make_settings(keywords=tuple(NAMES.values()))
    with time_machine.travel(DAY1, tick=False) as clock, Store(settings.database) as store:
        ids = []
        for n, news in enumerate(CYCLES):
            if n:
                clock.shift(timedelta(days=1))
            now = datetime.now(UTC)
            ids.append(store.begin_cycle(now))
            store.record_papers(p for papers in news.values() for p in papers)
            if n < len(CYCLES) - 1:  # the last cycle is being planned: not recorded yet
                for key, papers in news.items():
                    store.record_keyword(key, papers, ids[-1], now, None, [p.id for p in papers])
                store.mark_planned(ids[-1], now)
        results = {k: KeywordResult(name) for k, name in NAMES.items()}
        for key, papers in CYCLES[-1].items():
            results[key].new = [p.id for p in papers]
        yield Recorded(settings, store, ids, results)


def reader(*topics: str, email: str = "ada@example.org", **fields) -> Reader:
    return Reader(email, "Ada", topics, **fields)


def test_the_window_of_this_cycle_holds_its_news_alone(recorded):
    window = recorded.builder().window(None)
    assert window.new_by_key == {GNN: [G3.id], LLM: [L3.id, GL2.id]}
    assert window.since is None and set(window.papers) == {G3.id, L3.id, GL2.id}
    assert window.earlier == {GL2.id: {GNN}}  # seen under GNN a cycle before


def test_a_window_since_an_earlier_cycle_adds_its_news_newest_cycle_first(recorded):
    first, second, _ = recorded.ids
    window = recorded.builder().window(first)
    assert window.new_by_key == {GNN: [G3.id, GL2.id, G2.id], LLM: [L3.id, GL2.id]}
    assert window.since == date(2025, 11, 16)  # the day of the cycle after which it starts
    assert window.earlier == {}  # nothing in it was seen before the window began
    assert recorded.builder().window(second).new_by_key == {GNN: [G3.id], LLM: [L3.id, GL2.id]}


def test_each_window_is_read_once_per_cycle(recorded):
    builder = recorded.builder()
    assert builder.window(recorded.ids[0]) is builder.window(recorded.ids[0])


def test_a_paper_seen_before_under_a_followed_topic_is_no_news():
    names = {GNN: "GNN", LLM: "LLM"}
    new_by_key = {GNN: ["b"], LLM: ["a", "b"]}
    papers = {pid: stored_paper(id=pid) for pid in "ab"}
    both = sections_for((GNN, LLM), new_by_key, {"b": {GNN}}, papers, names)
    assert [(name, [p.id for p, _ in items]) for name, items in both] == [("LLM", ["a"])]
    alone = sections_for((LLM,), new_by_key, {"b": {GNN}}, papers, names)
    assert [p.id for p, _ in alone[0][1]] == ["a", "b"]  # new to someone not following GNN
    fresh = sections_for((GNN, LLM), new_by_key, {}, papers, names)
    assert [(n, [(p.id, tags) for p, tags in items]) for n, items in fresh] == [
        ("GNN", [("b", ("LLM",))]),  # once, under its first topic, tagged with the other
        ("LLM", [("a", ())]),
    ]


def test_readers_with_the_same_topics_and_window_share_one_edition(recorded):
    editions = recorded.editions()
    today = Due(mail=True)
    first = editions.edition_for(reader(GNN, LLM), today)
    assert first is not None
    assert editions.edition_for(reader(GNN, LLM, email="x@example.org"), today) == first
    yesterday = Due(mail=True, since=recorded.ids[1])  # their last digest was the previous cycle
    assert editions.edition_for(reader(GNN, LLM), yesterday) == first
    assert editions.edition_for(reader(GNN), today) not in (None, first)
    llm_only = editions.edition_for(reader(LLM), today)
    assert llm_only not in (None, first)
    assert editions.edition_for(reader(LLM, abstracts="none"), today) not in (None, llm_only)
    assert editions.count == 4  # GNN+LLM, GNN, LLM, LLM without abstracts
    both, llm = recorded.store.edition(first).text, recorded.store.edition(llm_only).text
    assert GL2.title not in both and GL2.title in llm  # seen under GNN before: news to LLM only


def test_a_topic_without_news_gets_no_edition(recorded):
    results = dict(recorded.results, **{LLM: KeywordResult(NAMES[LLM])})
    editions = Editions(recorded.builder(results))
    assert editions.edition_for(reader(LLM), Due(mail=True)) is None
    assert editions.count == 0


def test_news_all_seen_before_under_another_followed_topic_plans_no_personal_digest(recorded):
    # Today LLM's only news is GL2, which its GNN readers got yesterday; GNN has none.
    results = {GNN: KeywordResult(NAMES[GNN]), LLM: KeywordResult(NAMES[LLM], new=[GL2.id])}
    ada, bo = reader(GNN, LLM), reader(LLM, email="bo@example.org")
    voters = {ada.key: [], bo.key: []}  # their votes would order their digests
    ranker = Ranker(recorded.store, datetime.now(UTC), votes=voters)
    editions = Editions(recorded.builder(results, ranker))
    assert editions.edition_for(ada, Due(mail=True)) is None  # nothing new to her: no mail
    assert editions.edition_for(reader(GNN, LLM, email="cy@example.org"), Due(mail=True)) is None
    assert isinstance(editions.edition_for(bo, Due(mail=True)), PlannedEdition)  # news to him


def test_a_weekly_edition_covers_its_days_and_only_a_daily_one_has_a_day_page(recorded):
    editions = recorded.editions()
    weekly = editions.edition_for(reader(GNN), Due(mail=True, since=recorded.ids[0]))
    daily = editions.edition_for(reader(GNN), Due(mail=True))
    week, day = recorded.store.edition(weekly), recorded.store.edition(daily)
    for p in (G2, GL2, G3):
        assert p.title in week.text
    assert G2.title not in day.text and G3.title in day.text
    assert "3 new papers on arXiv since 16 November 2025" in week.text
    assert "View in your browser" not in week.text  # no one day page holds several days
    view = "View in your browser: https://papers.example.org/days/2025-11-18/graph-neural-network"
    assert view in day.text


def test_a_resumed_reader_is_told_when_their_pause_ended(recorded):
    editions = recorded.editions()
    ended = date(2025, 11, 18)
    resumed = editions.edition_for(reader(GNN), Due(mail=True, resumed=ended))
    plain = editions.edition_for(reader(GNN), Due(mail=True))
    assert resumed != plain
    assert "Your pause ended on 18 November 2025" in recorded.store.edition(resumed).text
    assert "Your pause ended" not in recorded.store.edition(plain).text


def test_a_topic_cut_at_its_bound_carries_a_note(recorded):
    recorded.results[GNN].limit = 1
    editions = recorded.editions()
    text = recorded.store.edition(editions.edition_for(reader(GNN, LLM), Due(mail=True))).text
    words = " ".join(text.split())
    assert "more than 1 new papers for Graph Neural Network today; only the newest 1" in words
    assert "for Large Language Model today" not in words


def test_without_the_reading_room_no_link_leads_to_it(recorded):
    editions = recorded.editions(web_pages=False)
    edition = recorded.store.edition(editions.edition_for(reader(GNN), Due(mail=True)))
    assert G3.title in edition.text and "View in your browser" not in edition.text
    # Only the vote links (served with the manage page, reading room or not) go to the site.
    assert set(re.findall(r"papers\.example\.org(/\w*)", edition.html)) == {"/feedback"}


def test_a_paper_gone_from_a_damaged_history_is_left_out_not_the_digest(recorded):
    store = recorded.store
    store.db.execute("PRAGMA foreign_keys = OFF")  # as a damaged or hand-edited database might
    store.db.execute("DELETE FROM papers WHERE id = ?", [L3.id])
    window = recorded.builder().window(None)
    assert window.new_by_key == {GNN: [G3.id], LLM: [GL2.id]}
    edition = recorded.editions().edition_for(reader(LLM), Due(mail=True))
    assert GL2.title in store.edition(edition).text
