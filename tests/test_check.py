"""`digest check` tells the truth: the secret, paths as the running user sees them, pitfalls."""

from __future__ import annotations

import contextlib
import mailbox
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET, SUBSCRIBERS, settings_text

from digest.checks import user
from digest.cli import main
from digest.signing import fingerprint
from digest.store import Store

OTHER = "another secret, also thirty-two bytes or more"
ROOT = os.geteuid() == 0


def invoke(config: Path, secret: str | None = SECRET):
    env = {"DIGEST_SECRET": secret}
    return CliRunner().invoke(main, ["--config", str(config), "check"], env=env)


def lines(result, kind: str) -> list[str]:
    return [line.strip() for line in result.output.splitlines() if line.strip().startswith(kind)]


def write(folder: Path, fake_arxiv, *, smtp_port: int | None = None, digest: str = "", extra=""):
    """Write settings.toml (with extra [digest] lines) and subscribers.csv; return the path."""
    text = settings_text(api_url=fake_arxiv.url, smtp_port=smtp_port, extra=extra)
    config = folder / "settings.toml"
    config.write_text(text.replace("[digest]\n", f"[digest]\n{digest}"), encoding="utf-8")
    (folder / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    return config


# --- the secret ----------------------------------------------------------------------------


def test_a_missing_secret_is_a_warning(make_settings):
    settings = make_settings()
    result = invoke(settings.path, secret=None)
    assert result.exit_code == 0, result.output
    (warning,) = lines(result, "warning:")
    assert "DIGEST_SECRET (environment) is not set" in warning
    assert "service's environment file" in warning
    assert not settings.database.exists()  # check writes nothing, not even a database


def test_a_short_secret_is_a_settings_problem(make_settings):
    settings = make_settings()
    result = invoke(settings.path, secret="too short")
    assert result.exit_code == 2
    assert "DIGEST_SECRET (environment) is 9 bytes; use at least 32" in result.output


def test_a_changed_secret_is_fatal_and_the_one_that_signed_passes(make_settings):
    settings = make_settings()
    with Store(settings.database) as store:
        store.record_secret(fingerprint(SECRET.encode()), datetime(2025, 11, 16, tzinfo=UTC))
    result = invoke(settings.path, secret=OTHER)
    assert result.exit_code == 2
    (error,) = lines(result, "error:")
    assert "DIGEST_SECRET is not the secret that signed the mail already sent" in error
    assert "(since 2025-11-16)" in error and "--new-secret" in error
    unset = invoke(settings.path, secret=None)
    assert unset.exit_code == 2 and "DIGEST_SECRET is not set, but" in unset.output
    same = invoke(settings.path)
    assert same.exit_code == 0 and lines(same, "error:") == lines(same, "warning:") == []


# --- settings that work but do not do what is wanted -----------------------------------------


def test_plain_http_and_signup_into_a_maildir_are_warnings(tmp_path, fake_arxiv):
    config = write(tmp_path, fake_arxiv, extra="\n[web]\nsignup = true\n")
    config.write_text(config.read_text().replace("https://papers", "http://papers"))
    result = invoke(config)
    assert result.exit_code == 0, result.output
    http, signup = lines(result, "warning:")
    assert http.startswith("warning: settings.toml:5: [digest] base_url: http://papers.example.org")
    assert "one-click unsubscribe (RFC 8058) needs https" in http
    assert (
        signup.startswith("warning: settings.toml:") and "[web] signup: on, but without" in signup
    )
    assert "confirmation emails land where nobody reads them" in signup


def test_signup_over_smtp_and_https_have_no_warning(tmp_path, fake_arxiv, mail_server):
    config = write(
        tmp_path, fake_arxiv, smtp_port=mail_server.port, extra="\n[web]\nsignup = true\n"
    )
    result = invoke(config)
    assert result.exit_code == 0 and lines(result, "warning:") == []


# --- a settings error together with the subscribers' errors ---------------------------------


def test_a_settings_error_is_reported_with_the_csv_errors(make_settings, tmp_path):
    make_settings(subscribers="email,name,keywords\nada@example.org,Ada,\nbroken,Bob,\n")
    config = tmp_path / "settings.toml"
    config.write_text(config.read_text().replace('timezone = "Europe/Paris"', 'send_at = "7am"'))
    result = invoke(config)
    assert result.exit_code == 2
    assert "settings.toml:4: [digest] send_at: expected a time of day as HH:MM" in result.output
    assert "subscribers.csv:3: bad email address 'broken'" in result.output
    assert "1 valid, 1 bad row(s)" in result.output


def test_invalid_toml_still_checks_the_csv_beside_it(tmp_path):
    config = tmp_path / "settings.toml"
    config.write_text('[digest\nname = "x"\n')
    (tmp_path / "subscribers.csv").write_text(
        "email,name,keywords\nada@example.org,Ada,Some Topic\nbroken,Bob,\n"
    )
    result = invoke(config)
    assert result.exit_code == 2
    assert "invalid TOML" in result.output
    assert "subscribers.csv:3: bad email address 'broken'" in result.output
    assert "unknown keyword" not in result.output  # the keywords cannot be known
    assert "keyword names not checked" in result.output


def test_the_csv_is_checked_against_the_keywords_of_a_bad_file(make_settings, tmp_path):
    make_settings(subscribers="email,name,keywords\nada@example.org,Ada,No Such Topic\n")
    config = tmp_path / "settings.toml"
    config.write_text(config.read_text().replace("first_run_days = 2", "first_run_days = -1"))
    result = invoke(config)
    assert result.exit_code == 2
    assert "first_run_days: must be at least 0" in result.output
    assert "subscribers.csv:2: unknown keyword 'No Such Topic'" in result.output


# --- paths, as the running user sees them ------------------------------------------------------


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Judge access as a user who may not write everywhere (root may): os.access uses the
    real user id, so as root the block runs with the real id of `nobody`."""
    if not ROOT:
        yield
        return
    os.setresuid(pwd.getpwnam("nobody").pw_uid, 0, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)


def hand_over(*paths: Path) -> None:
    """Give paths to the user the block of unprivileged() runs as (as root: nobody)."""
    if ROOT:
        nobody = pwd.getpwnam("nobody")
        for path in paths:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)


def read_only(folder: Path) -> Path:
    """Make a folder that user cannot write in (as root: root's own, mode 0555)."""
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    return folder


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder the service user may write (outside pytest's root-only temporary folder)."""
    folder = Path(tempfile.mkdtemp(prefix="digest-check-"))
    folder.chmod(0o755)
    hand_over(folder)
    yield folder
    for path in (folder, *folder.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def test_paths_the_running_user_can_write_pass(place, fake_arxiv):
    config = write(place, fake_arxiv)
    with Store(place / "digest.db"):
        pass
    (place / "digest.db.lock").touch()
    hand_over(place / "digest.db", place / "digest.db.lock")
    with unprivileged():
        result = invoke(config)
    assert result.exit_code == 0, result.output
    assert lines(result, "error:") == []


@pytest.mark.parametrize("what", ["database", "lock", "archive", "outbox"])
def test_each_path_the_running_user_cannot_write_is_fatal(place, fake_arxiv, what):
    ro = read_only(place / "ro")
    digest = {
        "database": 'database = "ro/digest.db"\n',
        "archive": 'archive = "ro/archive/README.md"\n',
        "outbox": 'outbox = "ro/outbox"\n',
        "lock": "",
    }[what]
    config = write(place, fake_arxiv, digest=digest)
    if what == "lock":  # left by a cycle run as root: the service user cannot open it
        with Store(place / "digest.db"):
            pass
        hand_over(place / "digest.db")
        (place / "digest.db.lock").touch(mode=0o444)
    with unprivileged():
        result = invoke(config)
        name = user()
    assert result.exit_code == 2, result.output
    (error,) = lines(result, "error:")
    key = "database" if what == "lock" else what
    line = 2 if what == "lock" else 3  # the key's line, else its section's
    assert error.startswith(f"error: settings.toml:{line}: [digest] {key}: {name} cannot "), error
    assert "point it at a folder this user can write" in error
    expected = {
        "database": f"create {ro / 'digest.db'}: it cannot write in {ro}",
        "archive": f"create {ro / 'archive' / 'README.md'}: it cannot write in {ro}",
        "outbox": f"create {ro / 'outbox'}: it cannot write in {ro}",
        "lock": f"write {place / 'digest.db.lock'} (the cycle lock beside the database)",
    }[what]
    assert expected in error


def test_a_maildir_made_by_another_user_is_fatal(place, fake_arxiv):
    config = write(place, fake_arxiv, digest='outbox = "box"\n')
    box = mailbox.Maildir(place / "box", create=True)  # e.g. by a cycle run as root
    hand_over(place / "box", place / "box" / "cur")
    for sub in ("tmp", "new"):
        (place / "box" / sub).chmod(0o555)
    with unprivileged():
        result = invoke(config)
        name = user()
    assert result.exit_code == 2
    tmp, new = lines(result, "error:")
    assert f"[digest] outbox: {name} cannot write {place / 'box' / 'tmp'}" in tmp
    assert f"cannot write {place / 'box' / 'new'}" in new
    box.close()


def test_a_file_in_the_way_of_a_folder_is_fatal(place, fake_arxiv):
    (place / "blocked").write_text("a file where a folder should be\n")
    config = write(place, fake_arxiv, digest='database = "blocked/digest.db"\n')
    result = invoke(config)
    assert result.exit_code == 2
    (error,) = lines(result, "error:")
    assert f"[digest] database: {place / 'blocked'} is a file, not a folder" in error


# --- the bounce mailbox ------------------------------------------------------------------------


def bounces_config(folder: Path, fake_arxiv, lines: str) -> Path:
    """Write settings with a [bounces] section of these lines; return the path."""
    return write(folder, fake_arxiv, extra=f"\n[bounces]\n{lines}")


@pytest.mark.parametrize("made", ["nothing", "a plain folder"])
def test_a_bounce_maildir_that_is_missing_or_not_a_maildir_is_fatal(tmp_path, fake_arxiv, made):
    config = bounces_config(tmp_path, fake_arxiv, 'maildir = "bounces"\n')
    if made == "a plain folder":
        (tmp_path / "bounces").mkdir()
    result = invoke(config)
    assert result.exit_code == 2, result.output
    (error,) = lines(result, "error:")
    assert error.startswith("error: settings.toml:") and "[bounces] maildir: " in error
    said = "does not exist" if made == "nothing" else "is not a Maildir (no new/ and cur/ in it)"
    assert f"{tmp_path / 'bounces'} {said}" in error
    assert f"  bounces are read from Maildir {tmp_path / 'bounces'} (not opened" in result.output


def test_a_bounce_maildir_the_running_user_can_move_from_passes(place, fake_arxiv):
    config = bounces_config(place, fake_arxiv, 'maildir = "bounces"\n')
    box = mailbox.Maildir(place / "bounces", create=True)
    box.add_folder("processed")
    hand_over(*(place / "bounces").rglob("*"), place / "bounces")
    with unprivileged():
        result = invoke(config)
    assert result.exit_code == 0, result.output
    assert lines(result, "error:") == [] and lines(result, "warning:") == []


def test_a_bounce_maildir_of_another_user_is_fatal(place, fake_arxiv):
    config = bounces_config(place, fake_arxiv, 'maildir = "bounces"\n')
    box = mailbox.Maildir(place / "bounces", create=True)  # the relay's, say, not digest's
    box.add_folder("processed")
    hand_over(place / "bounces", place / "bounces" / "new", place / "bounces" / "cur")
    for sub in ("cur", ".processed/new", ".processed/cur"):  # (as root: .processed is root's)
        (place / "bounces" / sub).chmod(0o500)
    with unprivileged():
        result = invoke(config)
        name = user()
    assert result.exit_code == 2, result.output
    (error,) = lines(result, "error:")
    done = place / "bounces" / ".processed"
    assert f"[bounces] maildir: {name} cannot read and write {place / 'bounces' / 'cur'}, " in error
    assert f"write {done / 'new'}, write {done / 'cur'}: messages read are moved to {done}" in error


def check_imap(config: Path, password: str | None):
    env = {"DIGEST_SECRET": SECRET, "DIGEST_BOUNCES_PASSWORD": password}
    return CliRunner().invoke(main, ["--config", str(config), "check"], env=env)


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_an_imap_mailbox_without_its_password_is_fatal(tmp_path, fake_arxiv, scheme):
    url = f"{scheme}://bounces@127.0.0.1/INBOX"
    result = check_imap(bounces_config(tmp_path, fake_arxiv, f'imap = "{url}"\n'), None)
    assert result.exit_code == 2, result.output
    (error,) = lines(result, "error:")
    assert "[bounces] imap: DIGEST_BOUNCES_PASSWORD (environment) is not set" in error
    assert lines(result, "warning:") == []  # the server is on this machine
    assert "  bounces are read from IMAP 127.0.0.1:" in result.output


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("imap://bounces@mail.example.org/INBOX", True),
        ("imap://bounces@[::1]:1143/INBOX", False),
        ("imap://bounces@localhost/INBOX", False),
        ("imaps://bounces@mail.example.org/INBOX", False),
    ],
)
def test_plain_imap_across_the_network_is_a_warning(tmp_path, fake_arxiv, url, warned):
    result = check_imap(bounces_config(tmp_path, fake_arxiv, f'imap = "{url}"\n'), "pw")
    assert result.exit_code == 0, result.output
    assert lines(result, "error:") == []
    warnings = lines(result, "warning:")
    assert len(warnings) == warned
    if warned:
        assert warnings[0].startswith("warning: settings.toml:")
        assert (
            "[bounces] imap: imap:// sends the password to mail.example.org unencrypted"
            in (warnings[0])
        )
