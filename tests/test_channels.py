"""[[channels]]: settings, secrets kept out of sight, a post's text fitted to each service."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, SUBSCRIBERS, changed, settings_text
from helpers.chatserver import ChatServer

from digest.channel_config import Channel, redact
from digest.channel_news import render_post, short_authors
from digest.channels import ChannelPhase
from digest.chat import ChatError, Service
from digest.cli import main
from digest.config import ConfigError, load_settings
from digest.store import Store

TOKEN = "xoxb-not-a-real-token-7f3a9"
NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
AUTHORS = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Kurt Gödel"]
ENV = {"DIGEST_SECRET": SECRET, "DIGEST_TEST_TOKEN": TOKEN}


def write(tmp_path: Path, channels: str) -> Path:
    """Write settings with these [[channels]] tables (and a subscribers file); return the path."""
    text = settings_text(api_url="http://127.0.0.1:9/api/query", extra=channels)
    (tmp_path / "settings.toml").write_text(text, encoding="utf-8")
    (tmp_path / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    return tmp_path / "settings.toml"


def problems(tmp_path: Path, channels: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, channels), env)
    return caught.value.problems


def test_a_channel_takes_its_token_from_the_environment(tmp_path):
    settings = load_settings(
        write(
            tmp_path,
            '\n[[channels]]\nname = "Lab"\nurl = "slack://${DIGEST_TEST_TOKEN}/#papers"\n'
            'topics = ["graph neural network"]\nmax_papers = 5\ntimeout = 0.5\n',
        ),
        ENV,
    )
    (channel,) = settings.channels
    assert channel.url == f"slack://{TOKEN}/#papers"
    assert channel.topics == ("graph neural network",)
    assert (channel.max_papers, channel.timeout, channel.max_attempts) == (5, 0.5, 3)
    assert channel.redacted == "slack://…"
    assert TOKEN not in channel.hide(f"refused {channel.url} and {TOKEN}")
    assert TOKEN not in repr(settings)


def test_channel_settings_errors_name_the_key_and_the_fix(tmp_path):
    found = problems(
        tmp_path,
        '\n[[channels]]\nname = "a"\nurl = "json://h/${BAD NAME}"\n'
        '\n[[channels]]\nname = "A"\nurl = "json://h/x"\n'
        '\n[[channels]]\nname = "b"\nurl = "hooks.example.org/x"\n'
        '\n[[channels]]\nname = "c"\nurl = "json://h/x"\ntopics = ["Graph Neural Netwrk"]\n'
        '\n[[channels]]\nurl = "json://h/${UNCLOSED"\nmax_papers = 0\ncolour = "red"\n',
    )
    text = "\n".join(found)
    assert "[[channels]] #1 url: ${BAD NAME} names no environment variable" in text
    assert "[[channels]] #2 name: 'A' repeats channel #1" in text
    assert "[[channels]] #3 url: not an Apprise URL (no scheme://)" in text
    assert (
        "[[channels]] #4 topics: 'Graph Neural Netwrk' is not a keyword; did you mean "
        "'Graph Neural Network'?" in text
    )
    assert "[[channels]] #5 name: missing; this key is required" in text
    assert "[[channels]] #5 max_papers: must be at least 1 and 100, got 0" in text
    assert "[[channels]] #5 colour: unknown key" in text
    assert all(p.startswith("settings.toml:") for p in found)  # each names its line


def test_redact_keeps_a_host_name_and_hides_tokens():
    assert redact("mmosts://chat.example.org/abc123token") == "mmosts://chat.example.org/…"
    assert redact("json://user:pw@127.0.0.1:8080/hook?x=1") == "json://127.0.0.1:8080/…"
    assert redact("discord://1234567/secrettoken") == "discord://…"
    assert redact("no scheme at all") == "…"


def content(papers: int, total: int | None = None, room: str | None = "https://r.org/days/x"):
    return {
        "list": "Daily Papers",
        "day": "2025-11-16",
        "counts": [["Graph *Neural* Network", papers], ["LLM", 1]],
        "total": papers if total is None else total,
        "papers": [
            {
                "title": f"Paper [{i}] on x_1",
                "url": f"https://arxiv.org/abs/2511.{i:05d}v1",
                "authors": AUTHORS[: 1 + i % 4],
            }
            for i in range(papers)
        ],
        "room": room,
    }


def test_a_post_in_markdown_and_in_plain_text():
    assert render_post(content(2), markdown=True, limit=4000) == (
        "**Daily Papers**, 16 November 2025: 2 new papers\n"
        "Graph \\*Neural\\* Network: 2 · LLM: 1\n"
        "\n"
        "- [Paper \\[0\\] on x\\_1](https://arxiv.org/abs/2511.00000v1) — Ada Lovelace\n"
        "- [Paper \\[1\\] on x\\_1](https://arxiv.org/abs/2511.00001v1) — Ada Lovelace, "
        "Alan Turing\n"
        "[The day's papers](https://r.org/days/x)"
    )
    assert render_post(content(1, total=3, room=None), markdown=False, limit=4000) == (
        "Daily Papers, 16 November 2025: 3 new papers\n"
        "Graph *Neural* Network: 1 · LLM: 1\n"
        "\n"
        "- Paper [0] on x_1 — Ada Lovelace\n"
        "  https://arxiv.org/abs/2511.00000v1\n"
        "…and 2 more"
    )


def test_authors_are_shortened():
    assert short_authors(["A", "B", "C"]) == "A, B, C"
    assert short_authors(["Ada Lovelace", "B", "C", "D"]) == "Ada Lovelace et al."
    assert len(short_authors(["x" * 200])) == 80


@pytest.mark.parametrize("limit", [1000, 2000, 4000])
def test_a_busy_day_fits_the_service_and_says_how_many_more(limit):
    body = render_post(content(100, total=1000), markdown=True, limit=limit)
    shown = body.count("\n- [")
    assert len(body) <= limit and 0 < shown < 100
    assert body.endswith(f"…and {1000 - shown} more: [the day's papers](https://r.org/days/x)")
    assert len(render_post(content(100, total=1000), markdown=True, limit=60)) <= 60


def plan_one(store: Store) -> None:
    """Plan a cycle with one post to the channel 'hook'."""
    cycle = store.begin_cycle(NOW)
    store.plan_posts([{"channel": "hook", "day": "2025-11-16", "content": content(1)}], cycle, NOW)
    store.mark_planned(cycle, NOW)


def test_a_failed_try_waits_longer_each_time_then_leaves_the_post_waiting(tmp_path):
    waits: list[float] = []
    with ChatServer(mode="fail") as chat:
        channel = Channel("hook", f"json://{chat.host}/h", max_attempts=3, retry_seconds=1.5)
        settings = changed(load_settings(write(tmp_path, ""), ENV), channels=(channel,))
        with Store(settings.database) as store:
            plan_one(store)
            (result,) = ChannelPhase(settings, store, lambda: NOW, wait=waits.append).run()
            states = store.channel_states()
    assert waits == [1.5, 3.0]
    assert len(chat.refused) == 3 and chat.posts == []
    assert (result.posted, result.waiting) == (0, 1)
    assert result.error == (
        "Failed to send JSON POST notification: Internal server error., error=500."
    )
    assert states["hook"].waiting == 1 and states["hook"].last_error == result.error


def test_digest_check_validates_channels_and_hides_their_urls(tmp_path):
    config = write(
        tmp_path,
        '\n[[channels]]\nname = "hook"\nurl = "json://hooks.example.org/in/${DIGEST_TEST_TOKEN}"\n'
        '\n[[channels]]\nname = "typo"\nurl = "slak://${DIGEST_TEST_TOKEN}"\n'
        '\n[[channels]]\nname = "unset"\nurl = "mmosts://chat.example.org/${DIGEST_NOT_SET}"\n'
        '\n[[channels]]\nname = "clear"\nurl = "mmost://chat.example.org/${DIGEST_TEST_TOKEN}"\n',
    )
    result = CliRunner().invoke(main, ["--config", str(config), "check"], env=ENV)
    assert result.exit_code == 2, result.output
    assert TOKEN not in result.output
    assert "    hook: json://hooks.example.org/…; every topic\n" in result.output
    assert "error: settings.toml:" in result.output
    assert "[[channels]] #2 url: typo: Apprise knows no service slak://" in result.output
    assert "[[channels]] #3 url: unset: DIGEST_NOT_SET (environment) not set" in result.output
    assert "warning: settings.toml:" in result.output
    assert "[[channels]] #4 url: clear: mmost:// posts to chat.example.org unencrypted" in (
        result.output
    )


def test_digest_channels_lists_them_and_sends_a_test(tmp_path):
    with ChatServer() as chat:
        config = write(
            tmp_path,
            f'\n[[channels]]\nname = "Lab Chat"\nurl = "mmost://{chat.host}/${{DIGEST_TEST_TOKEN}}'
            '?image=no"\ntopics = ["Large Language Model"]\ntimeout = 2.0\n',
        )
        runner = CliRunner()
        listed = runner.invoke(main, ["--config", str(config), "channels"], env=ENV)
        sent = runner.invoke(main, ["-c", str(config), "channels", "--test", "lab chat"], env=ENV)
        unknown = runner.invoke(main, ["-c", str(config), "channels", "--test", "x"], env=ENV)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == (
        f"Lab Chat: mmost://{chat.host}/…; Large Language Model; never posted; ok\n"
    )
    assert sent.exit_code == 0, sent.output
    assert sent.stdout == f"channel Lab Chat (mmost://{chat.host}/…): test message sent\n"
    assert chat.posts[0].path == f"/hooks/{TOKEN}"
    assert chat.messages() == [
        {
            "text": "A test from Daily Papers: the day's new arXiv papers on Large Language "
            "Model will be posted here.",
            "username": "Apprise",
        }
    ]
    assert unknown.exit_code == 2
    assert "no channel named 'x' in settings.toml; channels: Lab Chat" in unknown.output


def test_a_test_message_that_is_not_taken_fails_the_command(tmp_path):
    with ChatServer(mode="fail") as chat:
        url = f"json://{chat.host}/${{DIGEST_TEST_TOKEN}}"
        config = write(tmp_path, f'\n[[channels]]\nname = "hook"\nurl = "{url}"\n')
        command = ["-c", str(config), "channels", "--test", "hook"]
        result = CliRunner().invoke(main, command, env=ENV)
    assert result.exit_code == 1
    assert f"channel hook (json://{chat.host}/…): not sent: " in result.output
    assert TOKEN not in result.output


def test_an_unknown_service_is_a_chat_error():
    from digest.chat import service

    with pytest.raises(ChatError, match="Apprise knows no service nope://"):
        service(Channel("x", "nope://host/path"))


class Stuck:
    """An Apprise client whose post never returns until released (a server that drips)."""

    def __init__(self):
        self.release, self.calls = threading.Event(), 0

    def notify(self, **post):
        self.calls += 1
        self.release.wait(10)
        return True


def test_a_try_past_its_deadline_is_given_up_and_not_tried_again_this_cycle(tmp_path):
    channel = Channel("hook", "json://127.0.0.1:9/h", timeout=0.05, max_attempts=3)
    stuck = Stuck()
    settings = changed(load_settings(write(tmp_path, ""), ENV), channels=(channel,))
    with Store(settings.database) as store:
        plan_one(store)
        phase = ChannelPhase(settings, store, lambda: NOW, wait=lambda s: None)
        started = time.monotonic()
        result = phase.channel(channel, Service(stuck, False, 1000, False))
        took = time.monotonic() - started
        stuck.release.set()
    assert took < 1.0 and stuck.calls == 1  # given up after 0.15 s; no second post meanwhile
    assert (result.posted, result.waiting, result.error) == (0, 1, "no answer within 0.15 s")


def test_a_services_own_webhook_url_is_taken_as_apprise_reads_it():
    from digest.chat import service

    slack = service(Channel("s", "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/XXXXXXXX"))
    assert (slack.markdown, slack.limit) == (True, 35000)
    with pytest.raises(ChatError, match=r"^Apprise cannot use https://example\.org/…: Unparseable"):
        service(Channel("x", "https://example.org/hook"))
