"""Votes in the store: one per person and paper, replaced, undone, read in bulk, deleted."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from helpers.builders import stored_paper

from digest.store import SCHEMA, Store, Vote
from digest.store.base import statements
from digest.store.schema import add_functions

NOW = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    """A store whose history holds three papers."""
    with Store(tmp_path / "digest.db") as store:
        store.record_papers(
            [stored_paper(id=f"2511.0000{n}", title=f"Paper {n}") for n in (1, 2, 3)]
        )
        yield store


def test_a_vote_is_recorded_replaced_and_undone(store):
    assert store.record_vote("Ada@Example.org", "2511.00001", 1, NOW)
    assert store.votes_of("ada@example.org") == [Vote("2511.00001", 1, NOW)]
    later = NOW + timedelta(hours=1)
    assert store.record_vote("ada@example.org", "2511.00001", -1, later)  # replaces it
    assert store.votes_of("ADA@example.org") == [Vote("2511.00001", -1, later)]
    assert store.vote_on("ada@example.org", "2511.00001") == -1
    assert not store.undo_vote("ada@example.org", "2511.00001", 1)  # not that vote: kept
    assert store.undo_vote("ada@example.org", "2511.00001")
    assert store.votes_of("ada@example.org") == [] and store.vote_on("ada@example.org", "x") is None
    assert not store.undo_vote("ada@example.org", "2511.00001")  # undoing twice is harmless


def test_the_same_vote_again_changes_nothing_not_even_its_time(store):
    store.record_vote("ada@example.org", "2511.00001", 1, NOW)
    assert not store.record_vote("ada@example.org", "2511.00001", 1, NOW + timedelta(days=3))
    assert store.votes_of("ada@example.org") == [Vote("2511.00001", 1, NOW)]


def test_only_known_papers_and_plus_or_minus_one(store):
    with pytest.raises(ValueError, match="1 or -1"):
        store.record_vote("ada@example.org", "2511.00001", 2, NOW)
    with pytest.raises(sqlite3.IntegrityError):  # the history has no such paper
        store.record_vote("ada@example.org", "2511.99999", 1, NOW)
    assert store.votes_of("ada@example.org") == []


def test_votes_in_bulk_take_one_query_and_keep_people_apart(store):
    store.record_vote("ada@example.org", "2511.00001", 1, NOW)
    store.record_vote("ada@example.org", "2511.00002", -1, NOW + timedelta(minutes=1))
    store.record_vote("alan@example.org", "2511.00001", -1, NOW)
    readers = [f"user{i:05d}@example.org" for i in range(10_000)]
    readers += ["ADA@example.org", "alan@example.org"]
    queries = []
    store.db.conn.set_trace_callback(queries.append)
    try:
        found = store.votes_by(readers)
    finally:
        store.db.conn.set_trace_callback(None)
    assert len(queries) == 1  # one statement, however many readers
    assert found == {
        "ada@example.org": [
            Vote("2511.00002", -1, NOW + timedelta(minutes=1)),
            Vote("2511.00001", 1, NOW),
        ],
        "alan@example.org": [Vote("2511.00001", -1, NOW)],
    }
    assert store.votes_by([]) == {}


def test_the_pages_list_titles_and_counts(store):
    for n, vote in ((1, 1), (2, 1), (3, -1)):
        store.record_vote("ada@example.org", f"2511.0000{n}", vote, NOW + timedelta(minutes=n))
    listed = store.voted_papers("ada@example.org")
    assert [(v.title, v.vote) for v in listed] == [("Paper 3", -1), ("Paper 2", 1), ("Paper 1", 1)]
    assert [v.title for v in store.voted_papers("ada@example.org", 1)] == ["Paper 3"]
    assert store.count_votes("ada@example.org") == {1: 2, -1: 1}
    assert store.count_votes("alan@example.org") == {1: 0, -1: 0}


def test_deleting_my_data_removes_my_votes_only(store):
    store.record_vote("ada@example.org", "2511.00001", 1, NOW)
    store.record_vote("alan@example.org", "2511.00001", 1, NOW)
    store.forget("Ada@example.org", NOW)
    assert store.votes_of("ada@example.org") == []
    assert store.votes_of("alan@example.org") == [Vote("2511.00001", 1, NOW)]


def test_a_database_of_the_previous_schema_gains_the_votes_table(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    add_functions(conn)
    before = next(n for n, script in enumerate(SCHEMA) if "CREATE TABLE votes" in script)
    for script in SCHEMA[:before]:  # the schema before this migration
        for statement in statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {before}")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
        store.record_papers([stored_paper()])
        store.record_vote("ada@example.org", "2501.00001", -1, NOW)
        assert store.votes_of("ada@example.org") == [Vote("2501.00001", -1, NOW)]
