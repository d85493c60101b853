"""The command line: exit codes, messages, and a real `digest once` subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, make_paper, settings_text
from helpers.fake_arxiv import FeedPaper

from digest.cli import main
from digest.store import Store


def fresh_paper(paper_id: str, title: str, minutes_ago: int = 0) -> FeedPaper:
    """Return a paper updated just now, so that even a first run mails it."""
    return make_paper(paper_id, title, datetime.now(UTC) - timedelta(minutes=minutes_ago))


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_every_command_has_help():
    for name, command in main.commands.items():
        assert command.help, name
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_check_reports_what_it_found(make_settings, tmp_path):
    make_settings()
    result = invoke("--config", str(tmp_path / "settings.toml"), "check")
    assert result.exit_code == 0, result.output
    assert "3 keyword(s)" in result.output
    assert "subscribers.csv: 3 valid, 0 bad row(s)" in result.output


def test_check_fails_on_bad_settings_naming_every_key(tmp_path):
    config = tmp_path / "settings.toml"
    config.write_text('[digest]\nsend_at = "7am"\n[arxiv]\nmax_results = 0\n')
    result = invoke("--config", str(config), "check")
    assert result.exit_code == 2
    assert "settings.toml:2: [digest] send_at: expected a time of day as HH:MM" in result.output
    assert "settings.toml:4: [arxiv] max_results: must be at least 1" in result.output
    assert "no keywords" in result.output


def test_check_fails_on_bad_csv_naming_the_line(make_settings, tmp_path):
    make_settings(subscribers="email,name,keywords\nada@example.org,Ada,\nbroken,Bob,\n")
    result = invoke("--config", str(tmp_path / "settings.toml"), "check")
    assert result.exit_code == 2
    assert "subscribers.csv:3: bad email address 'broken'" in result.output


def test_missing_settings_is_a_usage_error(tmp_path):
    result = invoke("--config", str(tmp_path / "none.toml"), "once")
    assert result.exit_code == 2
    assert "none.toml: no such file" in result.output


def test_config_comes_from_the_environment(make_settings, tmp_path):
    make_settings()
    result = invoke("check", env={"DIGEST_CONFIG": str(tmp_path / "settings.toml")})
    assert result.exit_code == 0, result.output


def test_preview_records_and_sends_nothing(make_settings, fake_arxiv, mail_server, tmp_path):
    settings = make_settings()
    fake_arxiv.papers.append(fresh_paper("2611.00001", "Fresh Graph Neural Network Results"))
    out = tmp_path / "preview.html"
    result = invoke(
        "--config",
        str(settings.path),
        "preview",
        "--subscriber",
        "alan@example.org",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Fresh Graph Neural Network Results" in out.read_text()
    assert mail_server.received == []
    with Store(settings.database) as store:
        assert store.db["cycles"].count == 0 and store.db["seen"].count == 0
    result = invoke("--config", str(settings.path), "preview")
    assert "Hello Ada Lovelace," in result.output


def test_archive_command_rebuilds_from_the_database(make_settings, fake_arxiv, tmp_path):
    settings = make_settings(smtp=False)
    assert invoke("--config", str(settings.path), "once").exit_code == 0
    first = settings.archive.read_text()
    settings.archive.unlink()
    result = invoke("--config", str(settings.path), "archive")
    assert result.exit_code == 0
    assert settings.archive.read_text() == first


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_digest_once_as_a_real_process(fake_arxiv, mail_server, tmp_path: Path):
    from helpers.fake_arxiv import status

    (tmp_path / "settings.toml").write_text(
        settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    )
    (tmp_path / "subscribers.csv").write_text(
        "email,name,keywords\nada@example.org,Ada,\nalan@example.org,Alan,Graph Neural Network\n"
        "oops,Bad Row,\n"
    )
    env = {
        **os.environ,
        "DIGEST_CONFIG": str(tmp_path / "settings.toml"),
        "DIGEST_SECRET": SECRET,
    }
    # Day 1 (real time): every fixture paper is months old, so the first run mails nothing.
    first = run_cli("once", env=env)
    assert first.returncode == 0, first.stderr
    assert "subscribers.csv:4: bad email address 'oops'" in first.stderr
    assert mail_server.received == []
    # A keyword fails: exit 1, and the others' news still goes out.
    fake_arxiv.papers.append(fresh_paper("2611.00002", "Graph Neural Network News", 5))
    fake_arxiv.script = [status(500), status(500)]  # the first keyword fails
    second = run_cli("once", env=env)
    assert second.returncode == 1, second.stderr
    assert sorted(mail_server.by_recipient()) == ["ada@example.org", "alan@example.org"]
    assert "summary:" in second.stderr and "2 emails sent" in second.stderr
    assert "Diffusion Model for Recommendation: FAILED" in second.stderr
    third = run_cli("once", env=env)
    assert third.returncode == 0 and "0 emails sent" in third.stderr
    assert len(mail_server.received) == 2
    # Nothing fails: exit 0 with the news mailed.
    fake_arxiv.papers.append(fresh_paper("2611.00003", "Graph Neural Network Later", 1))
    fourth = run_cli("once", env=env)
    assert fourth.returncode == 0, fourth.stderr
    assert "summary:" in fourth.stderr and "2 emails sent" in fourth.stderr
    assert "FAILED" not in fourth.stderr
    assert len(mail_server.received) == 4


def test_subscribers_lists_status_and_resubscribes(make_settings, tmp_path):
    settings = make_settings(subscribers=SUBSCRIBERS_WITH_BAD_ROW)
    with Store(settings.database) as store:
        store.suppress("grace@example.org", "unsubscribed", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
        store.suppress("gone@example.org", "bounced", datetime(2026, 1, 5, tzinfo=UTC))
    result = invoke("--config", str(settings.path), "subscribers")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # the log's warnings go to stderr
    assert lines[0] == "Daily Papers: times in Europe/Paris"
    assert any(line.split()[:2] == ["ada@example.org", "active"] for line in lines)
    assert any(  # 03:04 UTC is 04:04 in Paris, the list's time zone
        line.split()[:4] == ["grace@example.org", "unsubscribed", "2026-01-02", "04:04"]
        for line in lines
    )
    assert any(
        line.split()[:4] == ["subscribers.csv:5", "invalid", "bad", "email"] for line in lines
    )
    assert any(
        line.split()[:4] == ["gone@example.org", "bounced", "2026-01-05", "01:00"]
        and line.split()[4:] == ["-", "not", "listed", "-"]
        for line in lines
    )
    result = invoke(
        "--config", str(settings.path), "subscribers", "--resubscribe", "Grace@Example.org"
    )
    assert result.exit_code == 0 and "subscribed again" in result.output
    with Store(settings.database) as store:
        assert not store.is_suppressed("grace@example.org")
    result = invoke(
        "--config", str(settings.path), "subscribers", "--resubscribe", "ada@example.org"
    )
    assert result.exit_code == 1 and "is not unsubscribed" in result.output
    result = invoke(
        "--config", str(settings.path), "subscribers", "--resubscribe", "nobody@example.org"
    )
    assert result.exit_code == 1 and "nobody@example.org is not on the list" in result.output


def test_plain_http_base_url_is_warned_about(make_settings, caplog):
    from helpers.builders import changed

    from digest.cli import warn_plain_http

    settings = make_settings()
    warn_plain_http(settings)
    assert "not https" not in caplog.text
    warn_plain_http(changed(settings, base_url="http://papers.example.org"))
    assert "is not https: one-click unsubscribe (RFC 8058) needs https" in caplog.text


SUBSCRIBERS_WITH_BAD_ROW = (
    "email,name,keywords\nada@example.org,Ada,\nalan@example.org,Alan,\n"
    "grace@example.org,Grace,\nnope,Bad,\n"
)


@pytest.mark.slow
def test_once_on_a_terminal_shows_progress_bars(fake_arxiv, mail_server, tmp_path):
    import pty

    (tmp_path / "settings.toml").write_text(
        settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port).replace(
            "first_run_days = 2", "first_run_days = 10000"
        )
    )
    (tmp_path / "subscribers.csv").write_text(SUBSCRIBERS_WITH_BAD_ROW)
    env = {**os.environ, "DIGEST_CONFIG": str(tmp_path / "settings.toml"), "COLUMNS": "100"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "-q", "once"],
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=30) == 0
    text = output.decode(errors="replace")
    assert "fetch  [####" in text and "3/3" in text
    assert "send  [####" in text and "3/3" in text
