"""Files that hold addresses or the secret are created 0600 whatever the umask."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, changed

from digest.cli import main
from digest.pipeline import run_once
from digest.store import Store
from digest.store.journal import Journal

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request):
    """Run the test under this umask (the process's), and restore the one before."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_cycle_writes_the_database_its_wal_the_secret_and_the_outbox_0600(
    make_settings, fake_arxiv, mail_server, monkeypatch, umask
):
    monkeypatch.delenv("DIGEST_SECRET")  # the secret is generated and kept in the database
    settings = changed(make_settings(smtp=False), first_run_days=10_000)
    assert settings.secret is None
    report = run_once(settings, clock=lambda: DAY1)
    assert report.delivery.sent == 3
    database = settings.database
    with Store(database) as store:  # open: its WAL and shared-memory files exist
        assert store.get_meta("secret")
        files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
        assert all(path.exists() for path in files)
        assert {str(path): mode(path) for path in files} == {str(path): 0o600 for path in files}
    mail = sorted((settings.outbox / "new").iterdir())
    assert len(mail) == 3
    assert {mode(path) for path in mail} == {0o600}


def test_a_rollback_journal_gets_the_database_s_mode(tmp_path, umask):
    path = tmp_path / "digest.db"
    Store(path).close()
    conn = sqlite3.connect(path)  # as a tool an operator uses might, without WAL
    conn.execute("PRAGMA journal_mode=PERSIST")  # the journal stays after the commit
    with conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    conn.close()
    journal = tmp_path / "digest.db-journal"
    assert journal.exists() and mode(journal) == 0o600
    assert mode(path) == 0o600


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277], indirect=True)  # 0o277: 0o400 at open
def test_the_request_journal_and_its_lock_are_private(tmp_path, umask):
    journal = Journal(tmp_path / "digest.db")
    journal.append("unsubscribed", "ada@example.org", DAY1)
    assert mode(journal.path) == 0o600
    with journal.draining() as requests:
        assert [r["email"] for r in requests] == ["ada@example.org"]
    lock = journal.path.with_name(journal.path.name + ".lock")
    assert mode(lock) == 0o600


def test_check_warns_about_a_database_every_user_may_read(make_settings):
    settings = make_settings()
    Store(settings.database).close()

    def check() -> str:
        result = CliRunner().invoke(
            main, ["-c", str(settings.path), "check"], env={"DIGEST_SECRET": SECRET}
        )
        assert result.exit_code == 0, result.output  # a warning, not an error
        return result.output

    assert "readable by every user" not in check()
    os.chmod(settings.database, 0o644)
    output = check()
    warning = f"warning: {settings.database} is readable by every user of this machine"
    assert f"{warning} (mode 0644)" in output
    assert f"chmod 600 {settings.database}" in output
