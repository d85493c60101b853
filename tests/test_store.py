"""The database: migrations from every version, refusals, locks, WAL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import stored_paper

from digest.cli import main
from digest.store import SCHEMA, VERSION, Store, StoreError
from digest.store.schema import add_functions

NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
PAPER = stored_paper(
    id="2511.00001", title="T", authors=("A",), abstract="Abs.", published=NOW, updated=NOW
)


def database_at(path: Path, version: int) -> None:
    """Create a database the way digest at schema `version` left it, with some history."""
    conn = sqlite3.connect(path)
    add_functions(conn)  # what the migrations call
    conn.execute("PRAGMA synchronous = OFF")  # a file the test throws away: no fsync per statement
    for script in SCHEMA[:version]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    if version >= 1:
        conn.execute(
            "INSERT INTO papers VALUES ('2511.00001', 2, 'T', '[\"A\"]', 'Abs.', NULL, "
            "'2025-11-16T06:00:00+00:00', '2025-11-16T06:00:00+00:00', 'cs.IR', "
            "'[\"cs.IR\"]', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO keywords (key, first_seen, last_success, last_count) "
            "VALUES ('topic', '2025-11-16T06:00:00+00:00', "
            "'2025-11-16T06:00:00+00:00', 1)"
        )
        conn.execute(
            "INSERT INTO seen (keyword, paper_id, cycle_id, first_seen) "
            "VALUES ('topic', '2511.00001', 1, '2025-11-16T06:00:00+00:00')"
        )
        conn.execute(
            "INSERT INTO suppressions VALUES ('eve@example.org', 'unsubscribed', "
            "'2025-11-16T06:00:00+00:00')"
        )
        # Mail that an interrupted cycle left queued: the upgraded digest must still send it.
        conn.execute(
            "INSERT INTO cycles (id, started_at, status) VALUES "
            "(1, '2025-11-16T06:00:00+00:00', 'interrupted')"
        )
        conn.execute(
            "INSERT INTO editions (id, cycle_id, keywords, papers, subject, text, html, "
            "placeholders) VALUES (1, 1, '[\"topic\"]', 1, 'S', 'T', 'H', '{}')"
        )
        conn.execute(
            "INSERT INTO outbox (cycle_id, edition_id, email, name, message_id, planned_at) "
            "VALUES (1, 1, 'ada@example.org', 'Ada', '<1@x>', '2025-11-16T06:00:00+00:00')"
        )
    if version >= 4:
        conn.execute("UPDATE keywords SET watermark = '2025-11-16T06:00:00+00:00'")
    if version >= 5:
        conn.execute("UPDATE cycles SET planned_at = started_at")
    if version >= 6:
        conn.execute("UPDATE seen SET updated = '2025-11-16T06:00:00+00:00'")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", range(VERSION))
def test_migrates_from_every_earlier_version_keeping_the_history(tmp_path, version):
    path = tmp_path / "digest.db"
    database_at(path, version)
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if version >= 1:
            assert store.recent_papers("topic", 10) == [PAPER]
            assert store.is_suppressed("EVE@example.org")
            # The watermark of a keyword fetched before schema 4 comes from its history.
            assert store.keyword_states({"topic": "ti:x"}) == {"topic": (1, NOW)}
            assert [m.email for m in store.pending()] == ["ada@example.org"]
            # The history is searchable and listed newest first, whatever schema it came from.
            assert store.recent_papers("topic", 10, offset=0) == [PAPER]
            (found,) = store.db.execute(
                "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH 'Abs'"
            )
            assert found == (1,)
        # Every table of the current schema works.
        known = version >= 1  # the paper is in the migrated history: not news again
        store.record_papers([PAPER])
        assert store.diff_keyword("topic", [PAPER], NOW - timedelta(days=2)).new == (
            [] if known else ["2511.00001"]
        )
        store.record_keyword("topic", [PAPER], 2, NOW, "ti:x")
        assert store.keyword_states({"topic": "ti:x"}) == {"topic": (1, NOW)}
        assert store.keyword_states({"topic": "ti:y"}) == {}  # the query changed
        assert store.record_bounce("x@example.org", "550", NOW) is False


def test_the_watermark_only_moves_forward_and_resets_with_the_query(tmp_path):
    old, new = PAPER, stored_paper(id="2511.00002", published=NOW, updated=NOW + timedelta(days=1))
    since = NOW - timedelta(days=10)
    with Store(tmp_path / "digest.db") as store:
        store.record_papers([new, old])
        assert store.diff_keyword("topic", [new, old], since).new == [new.id, old.id]
        store.record_keyword("topic", [new, old], 1, NOW, "q")
        assert store.diff_keyword("topic", [new, old], since).new == []
        assert store.keyword_states({"topic": "q"})["topic"].watermark == new.updated
        store.record_keyword("topic", [old], 2, NOW, "q")  # an older answer
        assert store.keyword_states({"topic": "q"})["topic"] == (1, new.updated)
        store.record_keyword("topic", [old], 3, NOW, "q2")  # the query changed
        assert store.keyword_states({"topic": "q2"})["topic"].watermark == old.updated


def test_unseen_papers_older_than_the_window_are_recorded_not_announced(tmp_path):
    late = stored_paper(id="2511.00003", published=NOW, updated=NOW - timedelta(days=9))
    with Store(tmp_path / "digest.db") as store:
        store.record_papers([PAPER, late])
        assert store.diff_keyword("topic", [PAPER, late], NOW - timedelta(days=3)) == (
            [PAPER.id],
            1,
        )
        store.record_keyword("topic", [PAPER, late], 1, NOW, None)
        assert [p.id for p in store.recent_papers("topic", 10)] == [PAPER.id, late.id]


def test_a_database_from_a_newer_digest_is_refused(tmp_path):
    path = tmp_path / "digest.db"
    database_at(path, VERSION)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="written by a newer digest"):
        Store(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "digest.db"
    path.write_text("hello, I am not SQLite\n" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(path)


def test_a_locked_database_waits_then_says_so(tmp_path):
    path = tmp_path / "digest.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for a long time
    try:
        with Store(path, timeout=0.3) as store:
            started = datetime.now(UTC)
            with pytest.raises(
                StoreError, match=r"still locked by another process after waiting 0\.3 s"
            ):
                store.suppress("ada@example.org", "unsubscribed", NOW)
            assert (datetime.now(UTC) - started).total_seconds() >= 0.3
            assert not store.is_suppressed("ada@example.org")  # reads still work (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(path) as store:
        assert store.suppress("ada@example.org", "unsubscribed", NOW)


def test_cli_turns_database_errors_into_messages(make_settings):
    settings = make_settings()
    settings.database.write_text("not a database\n" * 100)
    result = CliRunner().invoke(main, ["--config", str(settings.path), "subscribers"])
    assert result.exit_code == 1
    assert "database:" in result.output and "file is not a database" in result.output
