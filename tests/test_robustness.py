"""A locked database, a crashed plan, a changed secret, bad paths: nothing lost, one clear line."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
import time
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET, changed, stored_paper
from helpers.cycles import DAY1, cycle, link_of, news, subscribers, suppressed, wide_first_run

import digest.files
from digest.archive import title_cell
from digest.cli import main
from digest.fetch import Fetched, FetchWindow
from digest.models import KeywordResult
from digest.pipeline import run_once
from digest.planning import plan
from digest.store import Store
from digest.web import ENDPOINT, make_app


class WriteLock:
    """Another process's write transaction on the database, held until released."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.mark.slow
async def test_an_unsubscribe_while_the_database_is_locked_longer_than_every_wait_is_kept(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings()
    app = make_app(settings)
    endpoint = app[ENDPOINT]
    endpoint.write_wait, endpoint.retry_every = 0.2, 0.2  # the waits, shortened (2 s and 5 s)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as client:
            await locked_longer_than_every_wait(
                settings, base, client, fake_arxiv, mail_server, caplog
            )
    finally:
        await server.close()


async def locked_longer_than_every_wait(settings, base, client, fake_arxiv, mail_server, caplog):
    await cycle(settings, DAY1)
    links = {
        r.message["To"].addresses[0].addr_spec: link_of(r.message, base)
        for r in mail_server.received
    }
    lock = WriteLock(settings.database)
    try:
        started = time.monotonic()
        async with client.post(links["grace@example.org"]) as answer:
            page = await answer.text()
        assert answer.status == 200 and time.monotonic() - started < 5
        assert "You are unsubscribed" in page and "your request is saved" in page
        async with client.get(links["ada@example.org"]) as answer:  # reading works meanwhile
            assert answer.status == 200 and "Unsubscribe" in await answer.text()
        assert "kept in digest.db.requests until it is free" in caplog.text
        with Store(settings.database, timeout=0.1) as store:
            assert store.is_suppressed("grace@example.org")  # the send phase honours it now
        while time.monotonic() - started < 1.2:  # held 6 times the waits: several tries fail
            await asyncio.sleep(0.1)
        assert "grace@example.org" not in suppressed(settings)
    finally:
        lock.release()
    deadline = time.monotonic() + 20
    while "grace@example.org" not in suppressed(settings):  # applied once free
        assert time.monotonic() < deadline, "the kept unsubscribe was never applied"
        await asyncio.sleep(0.1)
    mail_server.handler.received.clear()
    news(fake_arxiv, DAY1 + timedelta(days=1), 1)
    await cycle(settings, DAY1 + timedelta(days=1))
    assert sorted(mail_server.by_recipient()) == ["ada@example.org", "alan@example.org"]


@pytest.mark.slow
def test_planning_never_holds_the_database(make_settings, fake_arxiv):
    settings = wide_first_run(make_settings(subscribers=subscribers(6000)))
    now = DAY1
    papers = [stored_paper(id=f"2511.{i:05d}", updated=now, published=now) for i in range(30)]
    window = FetchWindow(now - timedelta(days=3))
    found = {k.key: Fetched(window, papers) for k in settings.keywords}
    done: list[float] = []  # when each unsubscribe made meanwhile was written
    planning = threading.Event()

    def unsubscribe_meanwhile() -> None:
        while planning.is_set():
            with Store(settings.database, timeout=10) as store:
                store.suppress(f"other{len(done)}@example.org", "unsubscribed", now)
            done.append(time.monotonic())

    with Store(settings.database) as store:
        cycle_id = store.begin_cycle(now)
        fetched = [KeywordResult(k.name) for k in settings.keywords]
        planning.set()
        writer = threading.Thread(target=unsubscribe_meanwhile)
        started = time.monotonic()
        writer.start()
        try:
            planned = plan(settings, store, found, fetched, cycle_id, now, SECRET.encode())
        finally:
            ended = time.monotonic()
            planning.clear()
            writer.join()
        assert planned.planned == 6000 and store.count_pending() == 6000
    # Writes went through all along: one transaction for the whole plan would let none in.
    during = [t for t in done if started < t < ended]
    assert len(during) >= 5, f"{len(during)} writes in {ended - started:.2f} s of planning"


def test_a_plan_cut_short_by_a_crash_is_dropped_and_its_papers_come_again(
    make_settings, fake_arxiv, mail_server, monkeypatch
):
    settings = wide_first_run(make_settings())

    def crash(self, cycle_id, now):
        raise KeyboardInterrupt  # the process dies just before the plan is complete

    with monkeypatch.context() as patch:
        patch.setattr(Store, "mark_planned", crash)
        with pytest.raises(KeyboardInterrupt):
            run_once(settings, clock=lambda: DAY1)
    with Store(settings.database) as store:
        assert store.count_pending() == 0  # planned rows stay invisible to the send phase
        assert store.db.execute("SELECT count(*) FROM seen").fetchone() == (0,)
    assert mail_server.received == []
    report = run_once(settings, clock=lambda: DAY1 + timedelta(minutes=5))
    assert report.ok and report.delivery.sent == 3
    with Store(settings.database) as store:
        statuses = dict(store.db.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
    assert statuses == {"sent": 3}  # the crashed cycle's partial plan is gone
    assert sorted(mail_server.by_recipient()) == sorted(
        ["ada@example.org", "alan@example.org", "grace@example.org"]
    )


async def test_a_changed_secret_is_refused_then_intended_and_an_old_link_is_said(
    make_settings, fake_arxiv, mail_server, caplog, monkeypatch
):

    from digest.signing import SecretChanged
    from digest.web import make_app

    settings = make_settings()
    await cycle(settings, DAY1)
    old_link = link_of(mail_server.received[0].message, "")
    monkeypatch.setenv("DIGEST_SECRET", "another secret, also 32 bytes long or more")
    settings = make_settings()
    with pytest.raises(SecretChanged):
        await cycle(settings, DAY1 + timedelta(days=1))
    with caplog.at_level(logging.WARNING):
        day = DAY1 + timedelta(days=1)
        await asyncio.to_thread(run_once, settings, clock=lambda: day, new_secret=True)
    assert "signing with a new secret, as --new-secret asked" in caplog.text
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            url = str(server.make_url("")).rstrip("/") + old_link
            async with client.get(url) as answer:
                assert answer.status == 400
    finally:
        await server.close()
    assert "has a signature the current secret did not make" in caplog.text


# --- files and folders ------------------------------------------------------------------------


def invoke(settings, *args: str):
    return CliRunner().invoke(main, ["--config", str(settings.path), *args])


def test_a_database_path_that_cannot_exist_is_one_clear_line(make_settings, tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where a folder should be\n")
    settings = make_settings(extra="")
    text = settings.path.read_text().replace(
        "[digest]\n", '[digest]\ndatabase = "not-a-folder/digest.db"\n'
    )
    settings.path.write_text(text)
    result = invoke(settings, "once")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "not-a-folder is a file, not a folder" in result.output


def test_a_lock_file_that_cannot_be_opened_is_one_clear_line(make_settings):
    settings = make_settings()
    (settings.database.parent / "digest.db.lock").mkdir()  # a folder where the lock goes
    result = invoke(settings, "once")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "cannot open the lock file" in result.output and "Is a directory" in result.output


def test_an_archive_that_cannot_be_written_fails_only_the_archive(
    make_settings, fake_arxiv, mail_server, tmp_path
):
    (tmp_path / "blocked").write_text("a file where a folder should be\n")
    settings = make_settings()
    text = settings.path.read_text().replace("[digest]\n", '[digest]\narchive = "blocked/R.md"\n')
    settings.path.write_text(text)
    settings = wide_first_run(changed(settings, archive=tmp_path / "blocked" / "R.md"))
    report = run_once(settings, clock=lambda: DAY1)
    assert report.delivery.sent == 3 and not report.ok  # mail went out; the cycle is partial
    assert (
        "cannot write" in report.archive_error and "is a file, not a folder" in report.archive_error
    )
    assert "the archive was NOT written" in report.summary()
    result = invoke(settings, "archive")
    assert result.exit_code == 1 and "digest archive` writes it" in result.output


@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_archive(make_settings, fake_arxiv, monkeypatch):
    settings = make_settings()
    run_once(settings, clock=lambda: DAY1)
    before = settings.archive.read_text()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(digest.files.os, "fsync", full)  # a full disk cannot be had here
    report = run_once(settings, clock=lambda: DAY1 + timedelta(days=1))
    assert "No space left on device" in report.archive_error
    assert settings.archive.read_text() == before  # the old archive is whole
    assert [p.name for p in settings.archive.parent.iterdir()] == [settings.archive.name]


def test_a_maildir_that_cannot_be_made_keeps_the_mail_queued(make_settings, fake_arxiv, tmp_path):
    (tmp_path / "file").write_text("x\n")
    settings = changed(wide_first_run(make_settings(smtp=False)), outbox=tmp_path / "file" / "box")
    report = run_once(settings, clock=lambda: DAY1)
    assert report.delivery.pending == 3 and report.delivery.sent == 0
    assert "cannot create the Maildir" in report.delivery.aborted


def test_a_hostile_id_cannot_add_a_link_or_a_cell_to_the_archive():
    paper = stored_paper(id="x)](https://evil.example) | **y", version=1)
    cell = title_cell(paper)
    assert cell.count("](") == 1
    target = cell.split("](", 1)[1]
    assert target.endswith(")**") and not {")", "|", " "} & set(target[:-3])
