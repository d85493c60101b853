"""Cycles posting to team chats on 127.0.0.1: exact posts, outages, a kill, a busy day, a hang."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, settings_text
from helpers.chatserver import ChatServer
from helpers.cycles import DAY1, news, subscribers
from helpers.fake_arxiv import FakeArxiv, busy_papers
from helpers.mailserver import FaultyHandler, MailServer

from digest.cli import main
from digest.config import Settings, load_settings
from digest.pipeline import run_once
from digest.store import Store

TOKEN = "mm-token-not-real-5d2c1"
HOOK = "hook-secret-not-real-81be"
ROCKET = "rocket-hook-not-real-0a77"
ENV = {"DIGEST_MM_TOKEN": TOKEN, "DIGEST_HOOK": HOOK, "DIGEST_ROCKET": ROCKET}
ROOM = "https://papers.example.org/days"
PAPER = "Diffusion Model for Recommendation meets Graph Neural Network"


def channels(host: str, **options: str) -> str:
    """Return three [[channels]]: a JSON webhook, Mattermost and Rocket.Chat, all at host."""
    extra = "".join(f"{key} = {value}\n" for key, value in options.items())
    return (
        f'\n[[channels]]\nname = "webhook"\nurl = "json://{host}/in/${{DIGEST_HOOK}}"\n{extra}'
        f'\n[[channels]]\nname = "Lab Mattermost"\nurl = "mmost://{host}/${{DIGEST_MM_TOKEN}}'
        f'?image=no"\ntopics = ["Graph Neural Network"]\n{extra}'
        f'\n[[channels]]\nname = "rocket"\nurl = "rocket://{host}/?webhook=${{DIGEST_ROCKET}}'
        '&mode=webhook&avatar=no"\ntopics = ["Large Language Model", '
        f'"diffusion model for recommendation"]\n{extra}'
    )


def first_line(message: dict) -> str:
    """Return the first line of a post (a JSON webhook's message, a chat's text), bold or not."""
    text = message.get("message") or message["text"]
    head = text.splitlines()[0]
    return head.removeprefix("**") if head.startswith("**") else head.replace(",", "**,", 1)


@pytest.fixture
def arxiv() -> Iterator[FakeArxiv]:
    with FakeArxiv([]) as fake:
        yield fake


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture
def make(tmp_path, monkeypatch, arxiv, mail_server):
    """Return a function writing settings with these channels, loaded."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def settings(extra: str, people: str | None = None) -> Settings:
        text = settings_text(api_url=arxiv.url, smtp_port=mail_server.port, extra=extra)
        (tmp_path / "settings.toml").write_text(text, encoding="utf-8")
        (tmp_path / "subscribers.csv").write_text(people or subscribers(3), encoding="utf-8")
        return load_settings(tmp_path / "settings.toml")

    return settings


def test_each_service_gets_the_exact_post_of_its_topics(make, arxiv, chat, mail_server):
    settings = make(channels(chat.host, timeout="2.0"))
    news(arxiv, DAY1, 1)
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok, report.summary()
    assert report.delivery.sent == 3 and len(mail_server.received) == 3
    hook, mattermost, rocket = chat.posts
    assert (hook.path, mattermost.path, rocket.path) == (
        f"/in/{HOOK}",
        f"/hooks/{TOKEN}",
        f"/hooks/{ROCKET}",
    )
    link = "https://arxiv.org/abs/2511.30001v1"
    assert hook.json == {
        "version": "1.0",
        "title": "",
        "message": "Daily Papers, 16 November 2025: 1 new paper\n"
        "Diffusion Model for Recommendation: 1 · Graph Neural Network: 1\n"
        "\n"
        f"- {PAPER} 1 — Ada Lovelace, Alan Turing\n"
        f"  {link}\n"
        f"The day's papers: {ROOM}/2025-11-16",
        "attachments": [],
        "type": "info",
    }
    assert mattermost.json == {
        "text": "**Daily Papers**, 16 November 2025: 1 new paper\n"
        "Graph Neural Network: 1\n"
        "\n"
        f"- [{PAPER} 1]({link}) — Ada Lovelace, Alan Turing\n"
        f"[The day's papers]({ROOM}/2025-11-16/graph-neural-network)",
        "username": "Apprise",
    }
    assert rocket.json == {
        "text": "**Daily Papers**, 16 November 2025: 1 new paper\n"
        "Diffusion Model for Recommendation: 1\n"
        "\n"
        f"- [{PAPER} 1]({link}) — Ada Lovelace, Alan Turing\n"
        f"[The day's papers]({ROOM}/2025-11-16/diffusion-model-for-recommendation)"
    }
    again = run_once(settings, clock=lambda: DAY1 + timedelta(hours=1))  # a rerun: no news
    assert again.ok and len(chat.posts) == 3
    with Store(settings.database) as store:
        states = store.channel_states()
    assert states["lab mattermost"].last_day == "2025-11-16"
    assert states["lab mattermost"].waiting == 0


def test_nothing_is_posted_on_a_day_without_news_for_the_channel(make, arxiv, chat):
    settings = make(channels(chat.host))
    arxiv.papers.append(busy_papers(1, "large language model", DAY1 - timedelta(hours=3))[0])
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok, report.summary()
    assert [p.path for p in chat.posts] == [f"/in/{HOOK}", f"/hooks/{ROCKET}"]  # no GNN news


@contextlib.contextmanager
def root_log() -> Iterator[io.StringIO]:
    """Yield what reaches a handler on the root logger at DEBUG, as digest's own log handler.

    (Not caplog: pytest also hangs its handler on loggers that do not propagate to the root.)
    """
    stream, root = io.StringIO(), logging.getLogger()
    handler, level = logging.StreamHandler(stream), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_an_outage_of_two_cycles_posts_both_days_once_in_order_on_recovery(make, arxiv, chat):
    settings = make(channels(chat.host, max_attempts="2", retry_seconds="0"))
    chat.mode = "fail"
    with root_log() as logged:
        for n in (1, 2):
            day = DAY1 + timedelta(days=n - 1)
            news(arxiv, day, n)
            report = run_once(settings, clock=lambda day=day: day)
            assert report.delivery.sent == 3  # the mail went all the same
            assert not report.ok
            assert f"channel Lab Mattermost BEHIND ({n} post(s) waiting: " in report.summary()
    assert len(chat.refused) == 2 * 2 * 3  # each cycle tried the first day's post twice
    assert "channel Lab Mattermost: the post of 2025-11-16 was not taken" in logged.getvalue()
    for secret in (TOKEN, HOOK, ROCKET):
        assert secret not in logged.getvalue()
    with Store(settings.database) as store:
        last = json.dumps(store.last_cycle())  # what /healthz shows
    assert '"channels_behind": ["webhook", "Lab Mattermost", "rocket"]' in last
    assert TOKEN not in last and HOOK not in last
    listed = CliRunner().invoke(main, ["-c", str(settings.path), "channels"]).stdout
    assert listed.splitlines()[1] == (
        f"Lab Mattermost: mmost://{chat.host}/…; Graph Neural Network; never posted; "
        "BEHIND: 2 post(s) wait since 2025-11-16 (Failed to send Mattermost notification to "
        "channel None: Internal server error., error=500.)"
    )
    chat.mode = "ok"
    recovered = run_once(settings, clock=lambda: DAY1 + timedelta(days=2))
    assert recovered.ok, recovered.summary()
    assert "BEHIND" not in recovered.summary()
    heads = [(p.path, first_line(p.json)) for p in chat.posts]
    for path in (f"/in/{HOOK}", f"/hooks/{TOKEN}", f"/hooks/{ROCKET}"):
        assert [head for where, head in heads if where == path] == [
            "Daily Papers**, 16 November 2025: 1 new paper",
            "Daily Papers**, 17 November 2025: 1 new paper",
        ]


def test_a_post_refused_once_is_posted_later_in_the_same_cycle(make, arxiv):
    with ChatServer(fail=1) as chat:
        settings = make(channels(chat.host, retry_seconds="0"))
        news(arxiv, DAY1, 1)
        report = run_once(settings, clock=lambda: DAY1)
    assert report.ok, report.summary()
    assert len(chat.refused) == 1 and len(chat.posts) == 3
    assert [c.posted for c in report.channels] == [1, 1, 1]


def test_a_channel_that_never_answers_holds_up_no_email(make, arxiv, mail_server):
    with ChatServer(mode="hang") as chat:
        settings = make(channels(chat.host, timeout="0.1", max_attempts="1"))
        news(arxiv, DAY1, 1)
        started = time.monotonic()
        report = run_once(settings, clock=lambda: DAY1)
        took = time.monotonic() - started
    assert report.delivery.sent == 3 and len(mail_server.received) == 3
    assert took < 5  # three channels, each given up after its timeout
    summary = report.summary()
    assert "channel webhook BEHIND (1 post(s) waiting: " in summary
    assert "channel Lab Mattermost BEHIND" in summary and "channel rocket BEHIND" in summary
    assert len(chat.refused) == 3 and chat.posts == []


@pytest.mark.slow
def test_a_thousand_paper_day_is_one_post_within_each_limit(make, arxiv, chat):
    settings = make(channels(chat.host, max_papers="100"), people="email,name,keywords\n")
    arxiv.papers.extend(busy_papers(1000, PAPER, DAY1 - timedelta(hours=1)))
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok, report.summary()
    hook, mattermost, rocket = chat.posts
    limits = {"webhook": 32768, "Lab Mattermost": 4000, "rocket": 1000}
    for post, (name, limit) in zip((hook, mattermost, rocket), limits.items(), strict=True):
        body = post.json.get("message") or post.json["text"]
        shown = body.count("\n- ")
        assert len(body) <= limit, name
        assert body.splitlines()[0].endswith(": 1000 new papers")
        assert f"…and {1000 - shown} more" in body
    assert hook.json["message"].count("\n- ") == 100  # max_papers, well within 32768
    assert 0 < rocket.json["text"].count("\n- ") < 10


@pytest.mark.slow
def test_kill_9_between_planning_and_posting_then_a_rerun_posts_once(arxiv, tmp_path):
    news(arxiv, datetime.now(UTC), 1)  # a process of its own: today's clock
    handler = FaultyHandler(delay=0.01)  # the mail takes a while: the kill lands in it
    with MailServer(handler) as mail, ChatServer() as chat:
        config = tmp_path / "settings.toml"
        text = settings_text(api_url=arxiv.url, smtp_port=mail.port, extra=channels(chat.host))
        config.write_text(text, encoding="utf-8")
        (tmp_path / "subscribers.csv").write_text(subscribers(30), encoding="utf-8")
        env = {**os.environ, **ENV, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
        command = [sys.executable, "-m", "digest", "once"]
        victim = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(handler.received) < 3:  # planned: the mail is going out
            assert victim.poll() is None, "the cycle ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        handler.delay = 0
        assert chat.posts == []  # killed before the channel phase
        with Store(tmp_path / "digest.db") as store:
            waiting = {k: s.waiting for k, s in store.channel_states().items()}
        assert waiting == {"webhook": 1, "lab mattermost": 1, "rocket": 1}
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    assert sorted(p.path for p in chat.posts) == sorted(
        [f"/in/{HOOK}", f"/hooks/{TOKEN}", f"/hooks/{ROCKET}"]
    )
    assert all("1 new paper" in p.body.decode() for p in chat.posts)
    for secret in (TOKEN, HOOK, ROCKET):
        assert secret not in again.stderr


def test_no_channels_no_posts_table_rows(make, arxiv):
    settings = make("")
    news(arxiv, DAY1, 1)
    assert run_once(settings, clock=lambda: DAY1).channels == []
    with Store(Path(settings.database)) as store:
        assert store.db.execute("SELECT count(*) FROM posts").fetchone() == (0,)
