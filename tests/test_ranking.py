"""Ranking: text scores and matched words, what votes teach (Rocchio), the top picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers.builders import stored_paper

from digest.ranker import TOP_PICKS, Ranker
from digest.ranking import Candidate, cosine, learn, order
from digest.store import Store
from digest.store.relevance import Stemmer

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def paper(pid, title, abstract, hours):
    return stored_paper(
        id=pid, title=title, abstract=abstract, updated=NOW - timedelta(hours=hours)
    )


PAPERS = {
    p.id: p
    for p in (
        paper("2611.00001", "Graph neural networks for molecules", "Message passing over "
              "molecule graphs predicts chemical properties of proteins and drugs.", 1),
        paper("2611.00002", "Protein folding with graph networks", "Graph networks predict "
              "protein structure from amino acid chains and molecule contacts.", 2),
        paper("2611.00003", "Graph neural networks for traffic", "Road graphs forecast "
              "traffic flow in cities with sensors and cars.", 3),
        paper("2611.00004", "Drug discovery on molecule graphs", "Graph models screen drug "
              "molecules for binding to protein targets.", 4),
        paper("2611.00005", "Graph coloring heuristics", "Greedy coloring of sparse graphs.", 5),
        paper("2611.00006", "Sparse attention is all you need", "Transformers with sparse "
              "attention for long documents.", 6),
    )
}  # fmt: skip
A, B, C, D, E, F = PAPERS
# The rest of the history: common words are common (their idf is low), as in a real one.
HISTORY = [
    stored_paper(id=f"2610.{n:05d}", title=f"Neural network graph models, study {n}",
                 abstract=f"We study graph neural networks and models for task {n} with data.",
                 authors=(f"Author {n}",))
    for n in range(40)
]  # fmt: skip


def test_stems_are_the_indexs():
    assert Stemmer().stems(["networks", "Graphs".casefold(), "müller"]) == {
        "networks": "network",
        "graphs": "graph",
        "müller": "muller",
    }


def ranker(tmp_path, votes=()):
    store = Store(tmp_path / "d.db")
    store.record_papers([*PAPERS.values(), *HISTORY])
    for who, pid, vote in votes:
        store.record_vote(who, pid, vote, NOW)
    return store, Ranker(store, NOW, top_picks=2)


def section(*ids):
    return [(PAPERS[i], ()) for i in ids]


def arranged_for(rank, sections, queries, window, reader=None, papers=PAPERS):
    return rank.arrange(rank.plain(sections, queries, papers, window), reader)


def ordered(arranged, title="Graph Neural Network"):
    return [p.id for p, _ in dict(arranged.sections)[title]]


def test_plain_order_is_the_topics_words_then_the_date(tmp_path):
    _, rank = ranker(tmp_path)
    queries = {"Graph Neural Network": ("graph", "neural", "network")}
    got = arranged_for(rank, [("Graph Neural Network", section(E, D, C))], queries, 1)
    assert ordered(got)[0] == C  # C has all three words in its title
    assert got.highlights[C] == {"graph", "neural", "networks", "graphs"}  # as C spells them
    assert got.reasons == {} and got.picks == 0
    same = arranged_for(rank, [("Graph Neural Network", section(D, E))], {}, 1)
    assert ordered(same) == [D, E]  # no words to score: newest first


def test_likes_lift_a_paper_on_their_subject_and_name_the_closest(tmp_path):
    _, rank = ranker(tmp_path, [("ada@example.org", A, 1), ("ada@example.org", B, 1)])
    queries = {"Graph Neural Network": ("message",)}  # in none of them: the date decides
    plain = arranged_for(rank, [("Graph Neural Network", section(C, D))], queries, 1)
    assert ordered(plain) == [C, D]  # the date puts the drug paper last
    liked = arranged_for(
        rank, [("Graph Neural Network", section(C, D))], queries, 1, "ada@example.org"
    )
    assert ordered(liked)[0] == D  # molecules and proteins, like A and B
    assert liked.reasons[D] in {PAPERS[A].title, PAPERS[B].title}
    other = arranged_for(
        rank, [("Graph Neural Network", section(C, D))], queries, 1, "bob@example.org"
    )
    assert ordered(other) == ordered(plain)  # another reader's order is unchanged


def test_a_dislike_pushes_a_similar_paper_down(tmp_path):
    _, rank = ranker(tmp_path, [("ada@example.org", A, -1)])
    queries = {"Graph Neural Network": ()}
    plain = arranged_for(rank, [("Graph Neural Network", section(D, E))], queries, 1)
    assert ordered(plain) == [D, E]  # newer first
    got = arranged_for(
        rank, [("Graph Neural Network", section(D, E))], queries, 1, "ada@example.org"
    )
    assert ordered(got) == [E, D] and got.reasons == {}


def test_top_picks_lead_a_long_mail_and_papers_stay_in_their_sections(tmp_path):
    _, rank = ranker(tmp_path)
    papers = PAPERS | {p.id: p for p in HISTORY}
    history = [(p, ()) for p in HISTORY[:6]]
    many = [("Graph Neural Network", section(A, B, C, D, E)), ("Study", history)]
    queries = {"Graph Neural Network": ("graph", "neural", "network"), "Study": ("study",)}
    got = arranged_for(rank, many, queries, 2, papers=papers)
    assert got.picks == 1 and got.sections[0][0] == TOP_PICKS
    assert len(got.sections[0][1]) == 2 and len(got.sections) == 3
    assert all(tags[0] in {"Graph Neural Network", "Study"} for _, tags in got.sections[0][1])
    assert got.totals == {"Graph Neural Network": 5, "Study": 6}
    few = arranged_for(rank, [("Graph Neural Network", section(A, B))], queries, 3)
    assert few.picks == 0  # ten papers or fewer: no picks


def test_old_votes_count_less():
    vec = {"x": {"alpha": 1.0}, "y": {"beta": 1.0}}
    profile = learn([("x", 1, NOW - timedelta(days=360)), ("y", 1, NOW)], vec, {}, NOW)
    assert profile is not None
    assert profile.weights["beta"] > 10 * profile.weights["alpha"]
    assert learn([("unknown", 1, NOW)], vec, {}, NOW) is None
    assert abs(cosine({"a": 0.6, "b": 0.8}, {"a": 0.6, "b": 0.8}) - 1) < 1e-9
    same = [Candidate("p", NOW, 1.0), Candidate("q", NOW, 1.0)]
    assert [r.paper_id for r in order(same)] == ["p", "q"]  # ties: date, then id
