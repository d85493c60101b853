"""`digest backup` and `digest restore`: a consistent copy while mail goes out, put back safely."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.browser import serving
from helpers.builders import SECRET
from helpers.cycles import news, subscribers
from helpers.mailserver import free_port

from digest.backup import take
from digest.cli import main
from digest.lock import lock_for, service_lock
from digest.store import VERSION, Store
from digest.store.schema import SCHEMA

NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)


def cli(settings, *args: str):
    return CliRunner().invoke(main, ["--config", str(settings.path), *args])


def integrity(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def sent_ids(path: Path) -> set[str]:
    """Return the Message-IDs a database records as sent."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT message_id FROM outbox WHERE status = 'sent'")
        return {row[0] for row in rows}


@pytest.mark.slow(seconds=5)
def test_a_backup_taken_while_2000_mails_go_out_restores_whole(
    make_settings, fake_arxiv, mail_server, tmp_path
):
    settings = make_settings(subscribers=subscribers(2000))
    news(fake_arxiv, datetime.now(UTC), 1)  # every one of the 2,000 has news today
    env = {**os.environ, "DIGEST_CONFIG": str(settings.path), "DIGEST_SECRET": SECRET}
    cycle = subprocess.Popen(
        [sys.executable, "-m", "digest", "-q", "once"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        mail_server.wait_for(100, timeout=60)  # sending has begun, in another process
        result = cli(settings, "backup", str(tmp_path / "mid-send.db"))
        assert result.exit_code == 0, result.output
        _, errors = cycle.communicate(timeout=120)
    finally:
        cycle.kill()
    assert cycle.returncode == 0, errors
    received = {item.headers["Message-ID"] for item in mail_server.received}
    assert len(received) == 2000
    match = re.search(r"([\d,]+) messages sent, ([\d,]+) queued; integrity ok", result.output)
    assert match, result.output
    sent, queued = (int(n.replace(",", "")) for n in match.groups())
    assert sent > 0 and queued > 0 and sent + queued == 2000  # taken in the middle of sending

    restored = cli(settings, "restore", str(tmp_path / "mid-send.db"))
    assert restored.exit_code == 0, restored.output
    assert integrity(settings.database) == ["ok"]
    assert f"it holds {queued:,} queued message(s), which may have gone out" in restored.output
    assert re.search(r"the backup was taken \S+ \S+ Europe/Paris, \d+ s ago", restored.output)
    recorded = sent_ids(settings.database)
    assert len(recorded) == sent and recorded <= received  # every mail it records went out
    assert sent_ids(Path(f"{settings.database}.before-restore")) == received


def test_restore_waits_for_no_service_and_no_cycle(make_settings, tmp_path):
    settings = make_settings()
    Store(settings.database).close()
    assert cli(settings, "backup", str(tmp_path / "b.db")).exit_code == 0
    with service_lock(settings.database):  # as `digest run` and `digest serve` hold it
        result = cli(settings, "restore", str(tmp_path / "b.db"))
        assert result.exit_code == 1
        assert "digest run or digest serve is using" in result.output
        assert "stop it first" in result.output
    with lock_for(settings.database):  # as `digest once` holds it during a cycle
        result = cli(settings, "restore", str(tmp_path / "b.db"))
        assert result.exit_code == 1 and "another cycle is running" in result.output
    assert not Path(f"{settings.database}.before-restore").exists()  # nothing was touched
    with service_lock(settings.database, exclusive=True):  # a restore under way
        result = cli(settings, "serve")
        assert result.exit_code == 1 and "a restore of" in result.output
    assert cli(settings, "restore", str(tmp_path / "b.db")).exit_code == 0


@pytest.mark.slow
def test_restore_refuses_while_a_real_digest_serve_runs(make_settings, tmp_path):
    port = free_port()
    settings = make_settings(extra=f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    Store(settings.database).close()
    assert cli(settings, "backup", str(tmp_path / "b.db")).exit_code == 0
    env = {**os.environ, "DIGEST_CONFIG": str(settings.path), "DIGEST_SECRET": SECRET}
    with serving(env, port):
        result = cli(settings, "restore", str(tmp_path / "b.db"))
        assert result.exit_code == 1 and "stop it first" in result.output
    assert cli(settings, "restore", str(tmp_path / "b.db")).exit_code == 0


def test_restore_refuses_a_file_it_cannot_trust(make_settings, tmp_path):
    settings = make_settings()
    with Store(settings.database) as store:
        store.suppress("ada@example.org", "unsubscribed", NOW)
    before = settings.database.read_bytes()
    good = tmp_path / "good.db"
    assert cli(settings, "backup", str(good)).exit_code == 0

    damaged = tmp_path / "damaged.db"
    data = bytearray(good.read_bytes())
    data[4096 * 2 : 4096 * 2 + 200] = b"\xff" * 200  # a page of a table overwritten
    damaged.write_bytes(bytes(data))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    newer = tmp_path / "newer.db"
    newer.write_bytes(good.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 500)
    expected = {
        damaged: "damaged",
        other: "not a digest database",
        newer: f"written by a newer digest (schema {VERSION + 1}",
        text: "not a database digest can read",
    }
    for path, reason in expected.items():
        result = cli(settings, "restore", str(path))
        assert result.exit_code == 1, result.output
        assert f"digest: cannot restore: {path}: {reason}" in result.output
    result = cli(settings, "restore", str(settings.database))
    assert result.exit_code == 1 and "is the database itself" in result.output
    result = cli(settings, "backup", str(settings.database))
    assert result.exit_code == 1 and "is the database itself" in result.output
    assert settings.database.read_bytes() == before  # the database was never touched


def test_restore_keeps_the_unsubscribes_and_deletions_made_since(make_settings, tmp_path):
    settings = make_settings()
    with Store(settings.database) as store:
        store.save_choices("grace@example.org", "Grace", "csv", {"abstracts": "full"}, NOW)
        store.suppress("alan@example.org", "bounced", NOW)
    assert cli(settings, "backup", str(tmp_path / "b.db")).exit_code == 0
    with Store(settings.database) as store:  # after the backup
        store.suppress("ada@example.org", "unsubscribed", NOW + timedelta(hours=1))
        store.suppress("alan@example.org", "complaint", NOW + timedelta(hours=1))
        store.forget("grace@example.org", NOW + timedelta(hours=2))
    result = cli(settings, "restore", str(tmp_path / "b.db"))
    assert result.exit_code == 0, result.output
    assert "carried over from it, made since the backup: 1 deleted, 1 unsubscribed" in (
        result.output
    )
    with Store(settings.database) as store:
        assert store.suppression("ada@example.org")[0] == "unsubscribed"
        assert store.suppression("alan@example.org")[0] == "bounced"  # the backup's own
        assert store.suppression("grace@example.org")[0] == "deleted"
        assert store.person("grace@example.org") is None  # her choices are gone again


def test_restore_migrates_an_older_backup(make_settings, tmp_path):
    settings = make_settings()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        for script in SCHEMA[:5]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO suppressions VALUES ('ada@example.org', 'unsubscribed', ?)",
            [NOW.isoformat()],
        )
    result = cli(settings, "restore", str(old))
    assert result.exit_code == 0, result.output
    assert f"its schema 5 was migrated to this digest's {VERSION}" in result.output
    assert "the backup does not say when it was taken" in result.output
    with Store(settings.database) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert store.is_suppressed("ada@example.org")


def test_dated_backups_in_a_folder_keep_the_newest(make_settings, tmp_path):
    settings = make_settings()
    Store(settings.database).close()
    folder = tmp_path / "backups"
    (folder).mkdir()
    (folder / "notes.txt").write_text("kept: not a backup of ours")
    made = []
    for hours in range(4):
        snapshot, removed = take(settings, folder, NOW + timedelta(hours=hours), keep=2)
        made.append(snapshot.path)
        assert removed == made[:-2][-1:]  # the one that fell out of the newest two
    assert sorted(p.name for p in folder.iterdir()) == [
        "digest-20251116-090000.db",  # Europe/Paris: the list's time zone names them
        "digest-20251116-100000.db",
        "notes.txt",
    ]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in made[-2:])
    result = cli(settings, "backup", "--keep", "3", str(tmp_path / "new-folder"))
    assert result.exit_code == 0 and (tmp_path / "new-folder").is_dir()
    result = cli(settings, "backup", "--keep", "3", str(settings.path))
    assert result.exit_code == 2 and "needs FILE to be a folder" in result.output


def test_backup_names_a_missing_database(make_settings, tmp_path):
    settings = make_settings()
    result = cli(settings, "backup", str(tmp_path / "b.db"))
    assert result.exit_code == 1
    assert f"{settings.database}: no database there; check [digest] database" in result.output
    assert not (tmp_path / "b.db").exists()
