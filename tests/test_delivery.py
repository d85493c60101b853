"""Delivery under faults: injected SMTP errors, refusals, a stalled server, a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from helpers.builders import SECRET, changed, settings_text
from helpers.cycles import DAY1, outbox_status, subscribers, wide_first_run
from helpers.mailserver import FaultyHandler, MailServer

from digest.pipeline import run_once
from digest.store import Store


@pytest.mark.slow
def test_random_transient_faults_deliver_every_digest_exactly_once(make_settings, fake_arxiv):
    handler = FaultyHandler(seed=1234, rate=0.20)  # 250 digests, about 200 faults
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(250)))
        settings = changed(settings, smtp_port=server.port, smtp_connections=8)
        first = run_once(settings, clock=lambda: DAY1)
        assert first.delivery.retried > 50  # the faults really happened and were retried
        assert sum(handler.faults.values()) > 100
        assert {k.split()[1] for k in handler.faults} == {"421", "451", "452", "drop"}
        report, later = first, 0
        while report.delivery.pending and later < 5:  # a few used all their attempts: next cycle
            later += 1
            report = run_once(settings, clock=lambda n=later: DAY1 + timedelta(minutes=5 * n))
        counts = handler.counts()
    assert len(counts) == 250 and set(counts.values()) == {1}
    assert outbox_status(settings) == {"sent": 250}


def test_refused_addresses_fail_and_are_suppressed_after_three_cycles(make_settings, fake_arxiv):
    from helpers.cycles import news

    refused = frozenset({"user00001@example.org", "user00002@example.org"})
    handler = FaultyHandler(refused=refused)
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(6)))
        settings = changed(settings, smtp_port=server.port)
        for day in range(3):
            news(fake_arxiv, DAY1 + timedelta(days=day), day)
            report = run_once(settings, clock=lambda d=day: DAY1 + timedelta(days=d))
            assert report.delivery.failed == 2 and report.delivery.sent == 4
            assert not report.ok
        assert report.delivery.bounced == 2
        with Store(settings.database) as store:
            assert {e: r for e, (r, _) in store.suppressions().items()} == dict.fromkeys(
                refused, "bounced"
            )
            failed = store.db.execute(
                "SELECT DISTINCT last_error FROM outbox WHERE status = 'failed'"
            ).fetchall()
        assert failed == [("550 5.1.1 No such user here",)]
        news(fake_arxiv, DAY1 + timedelta(days=3), 3)
        report = run_once(settings, clock=lambda: DAY1 + timedelta(days=3))
        assert report.ok and report.delivery.sent == 4 and report.planned == 4
        assert set(handler.counts()) & refused == set()


@pytest.mark.slow
def test_a_stalled_server_times_out_and_nothing_is_marked_sent(make_settings, fake_arxiv):
    handler = FaultyHandler(stall=True)
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(40)))
        settings = changed(settings, smtp_port=server.port, smtp_timeout=0.1, smtp_connections=4)
        started = time.monotonic()
        report = run_once(settings, clock=lambda: DAY1)
        elapsed = time.monotonic() - started
        server.controller.loop.call_soon_threadsafe(handler.release.set)
    assert elapsed < 15, elapsed  # 4 connections x a few 0.1 s timeouts, not 40 x 5 x 0.1 s
    assert report.delivery.sent == 0 and report.delivery.pending == 40
    assert "failures in a row" in report.delivery.aborted
    assert handler.received == []
    assert outbox_status(settings) == {"pending": 40}
    with MailServer(FaultyHandler()) as healthy:  # the relay is back: the outbox goes out
        settings = changed(settings, smtp_port=healthy.port, smtp_timeout=5.0)
        report = run_once(settings, clock=lambda: DAY1 + timedelta(hours=1))
        assert report.ok and report.delivery.sent == 40
        assert set(healthy.handler.counts().values()) == {1}


@pytest.mark.slow
def test_rate_limit_spaces_messages(make_settings, fake_arxiv):
    handler = FaultyHandler()
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(11)))
        settings = changed(
            settings, smtp_port=server.port, smtp_rate_limit=20.0, smtp_connections=4
        )
        started = time.monotonic()
        report = run_once(settings, clock=lambda: DAY1)
        assert report.delivery.sent == 11
        # 11 messages at 20 per second: the last may start 0.5 s after the first.
        assert time.monotonic() - started >= 0.5


def test_hourly_limit_counts_earlier_cycles(make_settings, fake_arxiv, monkeypatch):
    from digest import delivery

    waits: list[float] = []
    real = delivery.RateLimiter.reserve

    def record(self):
        wait = real(self)
        waits.append(wait)
        return 0.0 if wait > 60 else wait  # do not really wait an hour in a test

    monkeypatch.setattr(delivery.RateLimiter, "reserve", record)
    with MailServer(FaultyHandler()) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(5)))
        settings = changed(settings, smtp_port=server.port, smtp_hourly_limit=3, smtp_connections=1)
        run_once(settings, clock=lambda: datetime.now(UTC))
    assert [w > 3000 for w in waits] == [False, False, False, True, True]


@pytest.mark.slow
def test_kill_9_mid_send_then_restart_delivers_everything(fake_arxiv, tmp_path):
    handler = FaultyHandler(delay=0.01)  # ~30 ms a message, like a real relay
    total, pool = 200, 8
    with MailServer(handler) as server:
        config = tmp_path / "settings.toml"
        text = settings_text(api_url=fake_arxiv.url, smtp_port=server.port)
        config.write_text(
            text.replace("first_run_days = 2", "first_run_days = 10000").replace(
                "connections = 2", f"connections = {pool}"
            )
        )
        (tmp_path / "subscribers.csv").write_text(subscribers(total))
        env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
        command = [sys.executable, "-m", "digest", "once"]
        victim = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(handler.received) < total // 3:
            assert victim.poll() is None, "the cycle ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        at_kill = len(handler.received)
        assert at_kill < total
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        counts = handler.counts()
    assert len(counts) == total  # every planned message was delivered
    duplicates = sum(counts.values()) - total
    assert duplicates <= pool  # only messages in flight at the kill can arrive twice
    with Store(tmp_path / "digest.db") as store:
        statuses = dict(store.db.execute("SELECT status, count(*) FROM cycles GROUP BY status"))
        assert statuses == {"crashed": 1, "ok": 1}
        assert dict(store.db.execute("SELECT status, count(*) FROM outbox GROUP BY status")) == {
            "sent": total
        }


def test_log_progress_reports_every_interval(caplog):
    import logging

    from digest.progress import LogProgress

    now = [0.0]
    progress = LogProgress(interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="digest.progress"):
        progress.start("send", 250)
        for _ in range(250):
            now[0] += 0.125  # 31.25 s in all, in steps exact in binary
            progress.advance()
        progress.finish()
    assert [r.getMessage() for r in caplog.records] == [
        "send: 80/250",
        "send: 160/250",
        "send: 240/250",
        "send: 250/250",
    ]
