"""The daemon: schedule with frozen time, catch-up, DST, failures, and a real `digest run`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from helpers.builders import SECRET, make_paper, settings_text
from helpers.mailserver import free_port

from digest.cli import main
from digest.daemon import Clockwork, Daemon, previous_slot, serve
from digest.lock import CycleRunning, lock_for
from digest.models import CycleReport
from digest.store import Store


@pytest.fixture
def paris(make_settings):
    """Settings that send at 07:00 Europe/Paris."""
    return make_settings()  # conftest's settings use Europe/Paris and the default 07:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_previous_slot_follows_the_local_clock_across_dst(paris):
    # 2026-03-29: Paris moves from UTC+1 to UTC+2 at 02:00 local time.
    assert previous_slot(utc(2026, 3, 28, 6, 30), paris) == utc(2026, 3, 28, 6, 0)
    assert previous_slot(utc(2026, 3, 29, 4, 59), paris) == utc(2026, 3, 28, 6, 0)
    assert previous_slot(utc(2026, 3, 29, 5, 0), paris) == utc(2026, 3, 29, 5, 0)
    # 2026-10-25: back to UTC+1.
    assert previous_slot(utc(2026, 10, 25, 6, 30), paris) == utc(2026, 10, 25, 6, 0)
    assert previous_slot(utc(2026, 10, 25, 5, 30), paris) == utc(2026, 10, 24, 5, 0)


class History:
    """A stand-in for the database's 'last successful cycle'."""

    def __init__(self, last: datetime | None = None):
        self.last = last

    def __call__(self) -> datetime | None:
        return self.last


def test_catch_up_once_at_start_then_daily_at_send_at(paris):
    history = History(utc(2026, 1, 9, 6, 1))  # yesterday's cycle ran
    with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False) as traveller:
        clockwork = Clockwork(paris, history)
        assert clockwork.due(datetime.now(UTC))  # today's 07:00 slot was missed: catch up
        history.last = datetime.now(UTC)
        assert not clockwork.due(datetime.now(UTC))
        assert clockwork.next_run() == utc(2026, 1, 11, 6, 0)
        traveller.move_to(utc(2026, 1, 11, 5, 59, 59))
        assert not clockwork.due(datetime.now(UTC))
        traveller.move_to(utc(2026, 1, 11, 6, 0, 1))
        assert clockwork.due(datetime.now(UTC))
        assert clockwork.next_run() == utc(2026, 1, 12, 6, 0)


def test_no_catch_up_when_todays_cycle_already_ran(paris):
    with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False):
        clockwork = Clockwork(paris, History(utc(2026, 1, 10, 6, 2)))
        assert not clockwork.due(datetime.now(UTC))


def test_a_fresh_install_runs_its_first_cycle_at_once(paris):
    with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False):
        assert Clockwork(paris, History(None)).due(datetime.now(UTC))


def test_schedule_is_right_on_dst_days(paris):
    history = History()
    with time_machine.travel(utc(2026, 3, 28, 6, 0, 30), tick=False) as traveller:
        history.last = datetime.now(UTC)
        clockwork = Clockwork(paris, history)
        assert not clockwork.due(datetime.now(UTC))
        assert clockwork.next_run() == utc(2026, 3, 29, 5, 0)  # 07:00 CEST, 23 hours later
        traveller.move_to(utc(2026, 3, 29, 4, 59, 30))
        assert not clockwork.due(datetime.now(UTC))
        traveller.move_to(utc(2026, 3, 29, 5, 0, 30))
        assert clockwork.due(datetime.now(UTC))
        history.last = datetime.now(UTC)
        traveller.move_to(utc(2026, 10, 24, 5, 0, 30))
        clockwork.due(datetime.now(UTC))
        history.last = datetime.now(UTC)
        assert clockwork.next_run() == utc(2026, 10, 25, 6, 0)  # 07:00 CET, 25 hours later


def test_a_raising_cycle_is_logged_and_the_schedule_goes_on(paris, caplog):
    calls: list[datetime] = []
    history = History()

    def broken_cycle(settings, **_) -> CycleReport:
        calls.append(datetime.now(UTC))
        raise RuntimeError("disk full")

    async def scenario() -> None:
        with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False) as traveller:
            daemon = Daemon(paris, cycle=broken_cycle)
            daemon.clockwork.last_success = history
            assert daemon.tick()
            await daemon.wait_for_cycle()
            assert daemon.status_line().startswith("idle; next cycle 2026-01-11 07:00")
            assert not daemon.tick()  # no retry loop after a failure
            traveller.move_to(utc(2026, 1, 11, 6, 0, 1))
            assert daemon.tick()  # the next day's slot still rings
            await daemon.wait_for_cycle()
            assert daemon.last_error == "RuntimeError: disk full"

    asyncio.run(scenario())
    assert len(calls) == 2
    assert "cycle: failed; the daemon goes on" in caplog.text


def test_a_locked_cycle_is_retried_later(paris):
    def locked(settings, **_) -> CycleReport:
        raise CycleRunning("another cycle is running")

    async def scenario() -> None:
        with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False) as traveller:
            daemon = Daemon(paris, cycle=locked)
            daemon.clockwork.last_success = History()
            assert daemon.tick()
            await daemon.wait_for_cycle()
            assert not daemon.tick()
            traveller.shift(timedelta(minutes=5, seconds=1))
            assert daemon.tick()
            await daemon.wait_for_cycle()

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_wedged_cycle_stops_feeding_the_watchdog(make_settings, tmp_path, monkeypatch):
    port = free_port()
    settings = make_settings(extra=f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    release = threading.Event()

    def wedged(settings, stop, progress) -> CycleReport:
        progress.start("fetch", 1)  # it moved once, then hangs (a bug, a stuck socket)
        release.wait(20)
        return CycleReport()

    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 50 ms while healthy

    def pings() -> int:
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                count += listener.recv(4096) == b"WATCHDOG=1"
        return count

    async def scenario() -> None:
        daemon = Daemon(settings, cycle=wedged, stall_after=0.25)
        daemon.clockwork.last_success = History()  # never ran: a cycle is due at once
        stopping = asyncio.Event()
        service = asyncio.create_task(serve(settings, daemon, tick=0.02, stopping=stopping))
        deadline = time.monotonic() + 10
        while not daemon.stalled():
            assert time.monotonic() < deadline, "the cycle never counted as stalled"
            await asyncio.sleep(0.02)
        assert daemon.running and daemon.status()["status"] == "stalled"
        pings()  # drain what was sent while it was healthy
        await asyncio.sleep(0.3)
        assert pings() == 0  # six intervals without a ping: systemd would restart it
        release.set()
        while daemon.running:
            assert time.monotonic() < deadline, "the cycle never ended"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert pings() > 0  # healthy again once the cycle moves on
        stopping.set()
        await service

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        listener.close()


# --- the real process ---------------------------------------------------------------------------


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


@pytest.mark.slow
def test_digest_run_as_a_real_service(fake_arxiv, mail_server, tmp_path: Path):
    port = free_port()
    now = datetime.now(UTC) - timedelta(minutes=1)
    fake_arxiv.papers.append(make_paper("2611.00003", "Graph Neural Network Today", now))
    config = tmp_path / "settings.toml"
    config.write_text(
        settings_text(
            api_url=fake_arxiv.url,
            smtp_port=mail_server.port,
            extra=f'\n[web]\nlisten = "127.0.0.1:{port}"\n',
        )
    )
    (tmp_path / "subscribers.csv").write_text("email,name,keywords\nalan@example.org,Alan,\n")
    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(0.2)
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(config),
        "DIGEST_SECRET": SECRET,
        "NOTIFY_SOCKET": str(sock_path),
        "WATCHDOG_USEC": "400000",
        "JOURNAL_STREAM": "8:1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    messages: list[str] = []

    def received(text: str) -> bool:
        with contextlib.suppress(TimeoutError):
            messages.append(listener.recv(4096).decode())
        return any(text in m for m in messages)

    try:
        wait_until(lambda: received("READY=1"), what="READY=1")
        wait_until(lambda: received("WATCHDOG=1"), what="WATCHDOG=1")
        health = wait_until(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), what="healthz")
        assert health["status"] == "ok" and health["next_cycle"]
        # A fresh database: the start-up catch-up cycle runs at once and mails the new paper.
        wait_until(lambda: mail_server.received, what="the catch-up cycle's mail")
        done = wait_until(
            lambda: (get_json(f"http://127.0.0.1:{port}/healthz") or {}).get("last_cycle"),
            what="a finished cycle",
        )
        assert done["status"] == "ok" and done["sent"] == 1
        assert any(m.startswith("READY=1\nSTATUS=") for m in messages)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        wait_until(lambda: received("STOPPING=1"), timeout=2, what="STOPPING=1")
    finally:
        if process.poll() is None:
            process.kill()
        stderr = process.communicate()[1]
        listener.close()
    assert "stopped" in stderr
    assert not stderr.startswith("20")  # under journald (JOURNAL_STREAM) lines carry no time


def test_once_refuses_while_a_cycle_holds_the_lock(make_settings, tmp_path):
    settings = make_settings()
    with lock_for(settings.database):  # as another cycle holds it (an flock: per open file)
        result = CliRunner().invoke(main, ["--config", str(settings.path), "once"])
    assert result.exit_code == 1
    assert f"another cycle is running (process {os.getpid()}" in result.output


@pytest.mark.slow
def test_a_killed_cycle_does_not_leave_the_lock_stuck(make_settings):
    settings = make_settings()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from digest.lock import lock_for\n"
                "with lock_for(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)"
            ),
            str(settings.database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(CycleRunning), lock_for(settings.database):
        pass
    holder.kill()
    holder.wait()
    holder.stdout.close()
    with lock_for(settings.database):
        pass  # the kernel dropped the dead process's lock


@pytest.mark.slow
def test_sigterm_mid_send_stops_cleanly_and_the_next_start_resumes(fake_arxiv, tmp_path):
    from helpers.mailserver import FaultyHandler, MailServer

    handler = FaultyHandler(delay=0.01)  # about 15 messages a second on each of 2 connections
    total = 80
    with MailServer(handler) as server:
        port = free_port()
        config = tmp_path / "settings.toml"
        text = settings_text(
            api_url=fake_arxiv.url,
            smtp_port=server.port,
            extra=f'\n[web]\nlisten = "127.0.0.1:{port}"\n',
        )
        config.write_text(text.replace("first_run_days = 2", "first_run_days = 10000"))
        rows = "".join(f"user{i:04d}@example.org,User {i},\n" for i in range(total))
        (tmp_path / "subscribers.csv").write_text("email,name,keywords\n" + rows)
        env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
        command = [sys.executable, "-m", "digest", "run"]
        first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: len(handler.received) >= 20, what="the first messages")
        first.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert first.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        first_log = first.communicate()[1]
        sent_before = len(handler.received)
        assert sent_before < total
        with Store(tmp_path / "digest.db") as store:
            assert store.last_cycle()["status"] == "interrupted"
        handler.delay = 0  # slow to be stopped mid-send; the rest may go at full speed
        second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: len(handler.received) >= total, what="the rest of the outbox")
            done = wait_until(
                lambda: (
                    (get_json(f"http://127.0.0.1:{port}/healthz") or {})
                    .get("last_cycle", {})
                    .get("status")
                    == "ok"
                ),
                what="cycle end",
            )
            assert done
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=10) == 0
            second.communicate()
        counts = handler.counts()
    assert "letting the message in flight finish" in first_log
    assert len(counts) == total and set(counts.values()) == {1}  # a clean stop: no duplicate


def test_an_unreadable_history_is_retried_a_minute_later(paris):
    calls = []

    def broken() -> datetime | None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database unreadable")
        return None

    with time_machine.travel(utc(2026, 1, 10, 9, 0), tick=False) as traveller:
        clockwork = Clockwork(paris, broken)
        with pytest.raises(OSError):
            clockwork.due(datetime.now(UTC))
        assert not clockwork.due(datetime.now(UTC))  # no flood of retries
        traveller.shift(timedelta(minutes=1))
        assert clockwork.due(datetime.now(UTC))
