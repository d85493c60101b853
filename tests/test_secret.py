"""One secret: a cycle refuses to sign with another than the one that signed the mail sent."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, make_paper
from helpers.cycles import DAY1

from digest.cli import main, service_settings
from digest.daemon import Daemon
from digest.signing import SecretChanged, fingerprint, mismatch
from digest.store import Store

OTHER = "another secret, also thirty-two bytes or more"


def invoke(settings, *args: str, secret: str | None = SECRET):
    """Run digest with DIGEST_SECRET set to secret (None: unset)."""
    env = {"DIGEST_SECRET": secret}
    return CliRunner().invoke(main, ["--config", str(settings.path), *args], env=env)


def meta(settings) -> dict[str, str]:
    with Store(settings.database) as store:
        return dict(store.db.execute("SELECT key, value FROM meta WHERE key LIKE 'secret%'"))


def cycles(settings) -> int:
    with Store(settings.database) as store:
        return store.db.execute("SELECT count(*) FROM cycles").fetchone()[0]


def errors(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("digest: ")]


def fresh_news(fake_arxiv) -> None:
    """Add a paper updated a minute ago, so that any cycle now mails everyone."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    fake_arxiv.papers.append(
        make_paper(f"2611.{len(fake_arxiv.papers):05d}", "Graph Neural Network News", now)
    )


def test_the_first_cycle_records_its_secret_and_the_same_secret_runs_again(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings()
    assert meta(settings) == {}
    assert invoke(settings, "once").exit_code == 0
    first = meta(settings)
    assert first["secret_fingerprint"] == fingerprint(SECRET.encode())
    assert "secret" not in first  # DIGEST_SECRET signs: nothing generated
    assert invoke(settings, "once").exit_code == 0
    assert meta(settings) == first


def test_a_manual_cycle_without_the_secret_refuses_before_doing_anything(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings()
    assert invoke(settings, "once").exit_code == 0  # the service's run, with DIGEST_SECRET
    before, asked, ran = meta(settings), len(fake_arxiv.requests), cycles(settings)
    fresh_news(fake_arxiv)
    mailed = len(mail_server.received)
    result = invoke(settings, "once", secret=None)  # `sudo -u digest digest once`
    assert result.exit_code == 2
    (line,) = errors(result)
    assert "DIGEST_SECRET is not set, but the mail already sent was signed with it" in line
    assert "systemctl start digest-once" in line and "digest once --new-secret" in line
    assert meta(settings) == before  # no secret generated, no fingerprint recorded
    assert len(fake_arxiv.requests) == asked and cycles(settings) == ran
    assert len(mail_server.received) == mailed


def test_a_changed_secret_refuses_until_new_secret_says_it_is_intended(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings()
    assert invoke(settings, "once").exit_code == 0
    before = meta(settings)
    refused = invoke(settings, "once", secret=OTHER)
    assert refused.exit_code == 2
    (line,) = errors(refused)
    assert "DIGEST_SECRET is not the secret that signed the mail already sent" in line
    assert "set it back to that one" in line
    assert meta(settings) == before

    fresh_news(fake_arxiv)
    intended = invoke(settings, "once", "--new-secret", secret=OTHER)
    assert intended.exit_code == 0, intended.output
    assert "signing with a new secret, as --new-secret asked" in intended.output
    assert meta(settings)["secret_fingerprint"] == fingerprint(OTHER.encode())
    assert mail_server.received  # the cycle went on and mailed, signed with the new secret
    assert invoke(settings, "once", secret=OTHER).exit_code == 0
    assert invoke(settings, "once", secret=SECRET).exit_code == 2  # the old one is the other now


def test_a_generated_secret_without_digest_secret_is_consistent(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings()
    assert invoke(settings, "once", secret=None).exit_code == 0
    kept = meta(settings)
    assert kept["secret_fingerprint"] == fingerprint(kept["secret"].encode())
    assert invoke(settings, "once", secret=None).exit_code == 0
    assert meta(settings) == kept
    result = invoke(settings, "once")  # DIGEST_SECRET set afterwards: not what signed
    assert result.exit_code == 2
    assert "signed with the secret digest generated" in result.output
    assert "unset DIGEST_SECRET" in result.output


@pytest.mark.parametrize(
    ("configured", "recorded", "kept", "refused"),
    [
        (None, None, None, False),  # the first run
        (SECRET, None, "kept", False),
        (SECRET, SECRET, None, False),
        (None, "kept", "kept", False),  # a generated secret, kept
        (SECRET, "kept", "kept", True),
        (None, SECRET, None, True),
        (None, SECRET, "kept", True),
        (OTHER, SECRET, None, True),
    ],
)
def test_which_secrets_are_refused(configured, recorded, kept, refused):
    mark = fingerprint(recorded.encode()) if recorded else None
    found = mismatch(configured, mark, "2025-11-16T06:00:00+00:00", kept)
    assert (found is not None) == refused
    if found:
        assert "(since 2025-11-16)" in str(found) and "\n" not in str(found)


@pytest.mark.slow
def test_digest_run_refuses_to_start_with_exit_2(make_settings, fake_arxiv, mail_server):
    settings = make_settings()
    assert invoke(settings, "once").exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(settings.path), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DIGEST_SECRET is not set, but the mail already sent was signed with it" in result.stderr
    assert "listening" not in result.stderr
    assert "secret" not in meta(settings)


async def test_a_running_daemon_logs_the_refusal_and_sends_nothing(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings()
    with Store(settings.database) as store:  # `digest once --new-secret` ran with another
        store.record_secret(fingerprint(OTHER.encode()), DAY1)
    fresh_news(fake_arxiv)
    daemon = Daemon(settings)
    with caplog.at_level(logging.INFO):
        assert daemon.tick()
        await daemon.wait_for_cycle()
    assert daemon.last_error.startswith("DIGEST_SECRET is not the secret that signed")
    (line,) = [r for r in caplog.records if r.getMessage().startswith("cycle: failed")]
    assert line.exc_info is None and "the daemon goes on" in line.getMessage()
    assert mail_server.received == [] and fake_arxiv.requests == [] and cycles(settings) == 0
    assert meta(settings)["secret_fingerprint"] == fingerprint(OTHER.encode())


def test_serve_with_another_secret_warns_at_start_and_run_refuses(make_settings, caplog):
    settings = make_settings()
    with Store(settings.database) as store:
        store.record_secret(fingerprint(OTHER.encode()), DAY1)
    ctx = SimpleNamespace(obj={"config": str(settings.path)})
    with caplog.at_level(logging.WARNING):
        assert service_settings(ctx, cycles=False).secret == SECRET
    assert "DIGEST_SECRET is not the secret that signed" in caplog.text
    assert "the endpoint refuses the links mailed" in caplog.text
    with pytest.raises(SecretChanged):
        service_settings(ctx, cycles=True)
    caplog.clear()
    with Store(settings.database) as store:
        store.record_secret(fingerprint(SECRET.encode()), DAY1)
    with caplog.at_level(logging.WARNING):
        service_settings(ctx, cycles=True)
    assert "secret" not in caplog.text
