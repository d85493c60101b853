"""Bounces and complaints that arrive later: read from a Maildir or IMAP, each counted once."""

from __future__ import annotations

import collections
import logging
import mailbox
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

import pytest
import trustme
from click.testing import CliRunner
from helpers.builders import DATA, changed
from helpers.cycles import DAY1, news, suppressed
from helpers.dovecot import PASSWORD, Dovecot
from helpers.site import LOCAL_PROXY, SENT, start

import digest.bounces
from digest import bouncebox
from digest.bouncebox import BounceBoxError
from digest.bouncemail import read_report
from digest.bounces import Outcome, read_bounces
from digest.cli import main
from digest.config import ConfigError, load_settings
from digest.pipeline import run_once
from digest.store import BounceFinding, Store
from digest.tokens import TokenError, bounce_token, verify_bounce_token

LATER = DAY1 + timedelta(hours=2)
BOUNCES = DATA / "bounces"
RETURN_PATH = "bounces+{token}@lists.example.org"
MAILDIR = f'return_path = "{RETURN_PATH}"\n\n[bounces]\nmaildir = "bounces"\n'
CORPUS_VERSION = "6.0.0"  # flufl.bounce's source distribution whose tests/data is read
CACHE = Path(__file__).parent / ".cache"
ADA, ALAN, GRACE = "ada@example.org", "alan@example.org", "grace@example.org"
EVE = "eve@example.org"


# --- helpers ----------------------------------------------------------------------------------


def bounce(name: str, **values: str) -> bytes:
    """Return a message of tests/data/bounces, its $placeholders filled in."""
    recipient = values.get("recipient", ADA)
    defaults = {
        "id": uuid.uuid4().hex,
        "recipient": recipient,
        "envelope": "papers@example.org",
        "original": f"<{uuid.uuid4().hex}@example.org>",
        "to": recipient,
        "unsubscribe": "https://papers.example.org/unsubscribe?token=none",
    }
    text = (BOUNCES / name).read_text(encoding="utf-8")
    return Template(text).substitute(defaults | values).encode()


def about(received) -> dict[str, str]:
    """Return what a bounce of a received digest quotes: envelope, Message-ID, link."""
    message = received.message
    return {
        "envelope": received.mail_from,
        "original": message["Message-ID"],
        "unsubscribe": message["List-Unsubscribe"].strip("<>"),
    }


def digests(mail_server) -> dict[str, dict[str, str]]:
    """Return, for each recipient, what a bounce of the last digest to them would quote."""
    return {item.rcpt_tos[0]: about(item) for item in mail_server.received}


def drop(settings, data: bytes, name: str | None = None) -> str:
    """Deliver a message into the bounce Maildir's new/; return its path in the Maildir."""
    name = name or f"{uuid.uuid4().hex}.relay,S={len(data)}"
    (settings.bounces.maildir / "new" / name).write_bytes(data)
    return f"new/{name}"


def read(settings, now: datetime = LATER) -> list[Outcome]:
    with Store(settings.database) as store:
        return read_bounces(settings, store, store.secret(settings.secret), now)


def summary(outcomes: list[Outcome]) -> list[tuple[str, str, str, str]]:
    return [(o.address, o.kind, o.status, o.action) for o in outcomes]


def failures(settings, address: str, now: datetime = LATER) -> int:
    with Store(settings.database) as store:
        return store.failures(address, now)


def processed(settings) -> list[str]:
    box = settings.bounces.maildir / ".processed"
    return sorted(f"{d}/{n}" for d in ("new", "cur") for n in os.listdir(box / d))


@pytest.fixture
def mailed(make_settings, fake_arxiv, mail_server, tmp_path):
    """Mail everyone a first digest through a VERP return path; return the settings."""
    settings = make_settings(extra=MAILDIR)
    mailbox.Maildir(tmp_path / "bounces", create=True)
    news(fake_arxiv, DAY1, 0)
    assert run_once(settings, clock=lambda: DAY1).delivery.sent == 3
    return settings


# --- VERP -------------------------------------------------------------------------------------


def test_each_digest_goes_from_a_signed_return_path_naming_its_reader(mailed, mail_server):
    envelopes = {item.rcpt_tos[0]: item.mail_from for item in mail_server.received}
    assert set(envelopes) == {ADA, ALAN, GRACE}
    assert len(set(envelopes.values())) == 3
    secret = load_settings(mailed.path).secret.encode()
    for address, envelope in envelopes.items():
        local, domain = envelope.split("@")
        assert domain == "lists.example.org" and local.startswith("bounces+")
        assert len(local) <= 64  # RFC 5321's limit on a local part
        token = local.removeprefix("bounces+")
        assert verify_bounce_token(secret, token, address) == address
        assert verify_bounce_token(secret, token.upper(), address) == address  # case-blind
        with pytest.raises(TokenError):
            verify_bounce_token(secret, token, ALAN if address != ALAN else ADA)
    for item in mail_server.received:  # what people see is unchanged
        assert item.message["From"] == "Daily Papers <papers@example.org>"


async def test_a_sign_up_confirmation_goes_from_the_return_path_and_its_dsn_names_them(
    make_settings, mail_server, tmp_path
):
    settings = changed(
        make_settings(extra=MAILDIR), web_signup=True, web_trusted_proxies=LOCAL_PROXY
    )
    mailbox.Maildir(tmp_path / "bounces", create=True)
    site, server = await start(settings)
    try:
        status, page = await site.sign_up(EVE)
        assert status == 200 and SENT in page
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    (received,) = mail_server.received
    assert received.rcpt_tos == [EVE]
    assert received.message["From"] == "Daily Papers <papers@example.org>"
    local, domain = received.mail_from.split("@")
    assert domain == "lists.example.org" and local.startswith("bounces+")
    secret = load_settings(settings.path).secret.encode()
    assert verify_bounce_token(secret, local.removeprefix("bounces+"), EVE) == EVE
    # Eve was never mailed a digest: only the return path says whom the DSN is about.
    drop(settings, bounce("dsn-without-recipient.eml", envelope=received.mail_from))
    assert summary(read(settings)) == [
        (EVE, "bounce", "5.1.1", "counted (1 of 3); moved to processed")
    ]


# --- DSNs as Postfix writes them, an ARF report ------------------------------------------------


def test_a_user_unknown_dsn_counts_once_and_is_moved(mailed, mail_server):
    ada = digests(mail_server)[ADA]
    name = drop(mailed, bounce("postfix-user-unknown.eml", **ada))
    (outcome,) = read(mailed)
    assert outcome == Outcome(name, ADA, "bounce", "5.1.1", "counted (1 of 3); moved to processed")
    assert processed(mailed) == [name] and not os.listdir(mailed.bounces.maildir / "new")
    with Store(mailed.database) as store:  # the digest it reports on, by its Message-ID
        rows = store.db.execute("SELECT email, digest, counts FROM reports").fetchall()
    assert rows == [(ADA, ada["original"], 1)]
    assert read(mailed) == []  # nothing is read twice


def test_delays_and_policy_refusals_never_count(mailed, mail_server):
    ada = digests(mail_server)[ADA]
    for n in range(3):
        original = f"<policy-{n}@example.org>"
        drop(mailed, bounce("postfix-delay.eml", **(ada | {"original": original})))
        drop(mailed, bounce("postfix-spam-rejected.eml", **(ada | {"original": original})))
    found = sorted(summary(read(mailed)))
    assert found == sorted(
        [(ADA, "delay", "4.4.1", "not counted: a delay; moved to processed")] * 3
        + [
            (ADA, "bounce", "5.7.1", "not counted: 5.7.1 blames the message, not the "
             "address; moved to processed")
        ] * 3
    )  # fmt: skip
    assert failures(mailed, ADA) == 0 and suppressed(mailed) == {}
    assert len(processed(mailed)) == 6


def test_three_bounced_digests_suppress_though_the_relay_accepted_each(
    mailed, mail_server, fake_arxiv
):
    first = digests(mail_server)[ADA]
    drop(mailed, bounce("postfix-user-unknown.eml", **first))
    # The same digest bounced again (another DSN, another Message-ID): still one digest.
    drop(mailed, bounce("postfix-user-unknown.eml", **first))
    assert [o.action for o in read(mailed)] == ["counted (1 of 3); moved to processed"] * 2
    day2 = DAY1 + timedelta(days=1)
    news(fake_arxiv, day2, 1)
    # The relay accepts every RCPT, so this digest to ada is accepted: the count stays.
    assert run_once(mailed, clock=lambda: day2).delivery.sent == 3
    assert failures(mailed, ADA, day2) == 1
    second = digests(mail_server)[ADA]
    assert second["original"] != first["original"]
    drop(mailed, bounce("postfix-user-unknown.eml", **second))
    assert [o.action for o in read(mailed, day2)] == ["counted (2 of 3); moved to processed"]
    day3 = day2 + timedelta(days=1)
    news(fake_arxiv, day3, 2)
    run_once(mailed, clock=lambda: day3)
    third = digests(mail_server)[ADA]
    drop(mailed, bounce("postfix-user-unknown.eml", **third))
    assert summary(read(mailed, day3)) == [
        (ADA, "bounce", "5.1.1", "counted (3 of 3): suppressed as bounced; moved to processed")
    ]
    assert suppressed(mailed) == {ADA: "bounced"}
    news(fake_arxiv, day3 + timedelta(days=1), 3)
    before = len(mail_server.received)
    run_once(mailed, clock=lambda: day3 + timedelta(days=1))
    assert ADA not in [i.rcpt_tos[0] for i in mail_server.received[before:]]
    # Subscribed again, the address starts afresh: one more bounce does not suppress it.
    config = ["--config", str(mailed.path), "subscribers"]
    assert CliRunner().invoke(main, [*config, "--resubscribe", ADA]).exit_code == 0
    drop(mailed, bounce("postfix-user-unknown.eml", **third | {"original": "<new@x.org>"}))
    assert [o.action for o in read(mailed, day3)] == ["counted (1 of 3); moved to processed"]


def test_refusals_at_smtp_time_and_late_bounces_share_the_limit(mailed):
    with Store(mailed.database) as store:
        store.record_bounce(ALAN, "550 5.1.1 unknown", DAY1)  # refused by the relay itself
        for n in range(2):
            effects = store.record_report(
                f"<dsn-{n}@relay>",
                [BounceFinding(ALAN, "bounce", "5.1.1", f"<d{n}@x>", True)],
                LATER,
            )
        assert effects[0].failures == 3 and effects[0].suppressed
        # The other way round: two late bounces, then a refusal at SMTP time.
        for n in range(2):
            finding = BounceFinding(GRACE, "bounce", "5.2.1", f"<g{n}@x>", True)
            store.record_report(f"<dsn-g{n}@relay>", [finding], LATER)
        assert store.record_bounce(GRACE, "550 5.2.1 mailbox disabled", LATER) is True
        # An accepted message clears the refusals at SMTP time, not the late bounces.
        eve = BounceFinding(EVE, "bounce", "5.1.1", "<e@x>", True)
        store.record_report("<dsn-e@relay>", [eve], LATER)
        store.record_bounce(EVE, "550 5.1.1 unknown", LATER)
        assert store.failures(EVE, LATER) == 2
        store.mark_sent(1, EVE, LATER)
        assert store.failures(EVE, LATER) == 1
    assert suppressed(mailed) == {ALAN: "bounced", GRACE: "bounced"}


def test_late_bounces_older_than_45_days_no_longer_count(mailed):
    for n, when in enumerate([LATER, LATER + timedelta(days=1), LATER + timedelta(days=50)]):
        drop(mailed, bounce("postfix-user-unknown.eml", recipient=GRACE))
        (outcome,) = read(mailed, when)
        assert outcome.action.startswith(f"counted ({[1, 2, 1][n]} of 3)")
    assert suppressed(mailed) == {}


def test_a_duplicate_counts_once(mailed, mail_server):
    data = bounce("postfix-user-unknown.eml", **digests(mail_server)[ALAN])
    first, second = drop(mailed, data, "1.dsn"), drop(mailed, data, "2.dsn")  # sent twice
    outcomes = read(mailed)
    assert [(o.name, o.address, o.kind) for o in outcomes] == [
        (first, ALAN, "bounce"),
        (second, ALAN, "duplicate"),
    ]
    assert outcomes[1].action == "already read 2025-11-16 08:00; counted once; moved to processed"
    assert failures(mailed, ALAN) == 1
    assert processed(mailed) == [first, second]  # moved, never deleted


def test_junk_is_left_in_place_and_logged_by_file_name(mailed, caplog):
    names = [
        drop(mailed, (BOUNCES / "malformed.eml").read_bytes()),
        drop(mailed, (BOUNCES / "out-of-office.eml").read_bytes()),
    ]
    with caplog.at_level(logging.WARNING):
        outcomes = read(mailed)
    assert sorted((o.name, o.kind, o.address) for o in outcomes) == sorted(
        (n, "junk", "") for n in names
    )
    for name in names:
        assert f"bounces: {name} is neither a bounce nor a report; left in place" in caplog.text
        assert (mailed.bounces.maildir / name).exists()
    assert not (mailed.bounces.maildir / ".processed").exists()
    with Store(mailed.database) as store:
        assert store.db.execute("SELECT count(*) FROM reports").fetchone() == (0,)
        assert store.db.execute("SELECT count(*) FROM suppressions").fetchone() == (0,)
    assert [o.kind for o in read(mailed)] == ["junk", "junk"]  # still there, still nobody's


def test_the_return_path_names_the_reader_when_the_dsn_does_not(mailed, mail_server):
    alan = digests(mail_server)[ALAN]
    drop(mailed, bounce("dsn-without-recipient.eml", envelope=alan["envelope"]))
    assert summary(read(mailed)) == [
        (ALAN, "bounce", "5.1.1", "counted (1 of 3); moved to processed")
    ]
    # A token that is not ours (altered, or signed with another secret) names nobody.
    token = alan["envelope"].removeprefix("bounces+").split("@")[0]
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    for forged in (altered, bounce_token(b"another secret of thirty-two bytes", ALAN)):
        drop(mailed, bounce("dsn-without-recipient.eml", envelope=RETURN_PATH.format(token=forged)))
    assert (
        summary(read(mailed))
        == [("", "bounce", "5.1.1", "no address found: counted for nobody; moved to processed")] * 2
    )
    assert failures(mailed, ALAN) == 1


def test_a_complaint_unsubscribes_at_once_and_shows_in_subscribers(mailed, mail_server, fake_arxiv):
    grace = digests(mail_server)[GRACE]
    drop(mailed, bounce("arf-complaint.eml", recipient=GRACE, **grace))
    assert summary(read(mailed)) == [
        (GRACE, "complaint", "", "unsubscribed (complaint); moved to processed")
    ]
    assert suppressed(mailed) == {GRACE: "complaint"}
    result = CliRunner().invoke(main, ["--config", str(mailed.path), "subscribers"])
    assert result.exit_code == 0
    (line,) = [x for x in result.output.splitlines() if GRACE in x]
    assert line.split()[1:4] == ["complaint", "2025-11-16", "09:00"]  # in the list's zone
    day2 = DAY1 + timedelta(days=1)
    news(fake_arxiv, day2, 1)
    before = len(mail_server.received)
    run_once(mailed, clock=lambda: day2)
    assert sorted(i.rcpt_tos[0] for i in mail_server.received[before:]) == [ADA, ALAN]


def test_a_redacted_complaint_is_traced_by_its_signed_unsubscribe_link(mailed, mail_server):
    # Providers often hide the recipient; the copy's unsubscribe link still names them.
    alan = digests(mail_server)[ALAN] | {"envelope": "papers@example.org"}
    data = bounce("arf-complaint.eml", recipient="redacted", to="redacted", **alan)
    report = read_report(data)
    assert [r.address for r in report.recipients] == [""]
    drop(mailed, data)
    assert summary(read(mailed)) == [
        (ALAN, "complaint", "", "unsubscribed (complaint); moved to processed")
    ]


# --- the command and the cycle ---------------------------------------------------------------


def test_digest_bounces_prints_each_message_found(mailed, mail_server):
    sent = digests(mail_server)
    drop(mailed, bounce("postfix-user-unknown.eml", **sent[ADA]), "1.dsn")
    drop(mailed, bounce("postfix-delay.eml", recipient=ALAN, **sent[ALAN]), "2.delay")
    drop(mailed, bounce("arf-complaint.eml", recipient=GRACE, **sent[GRACE]), "3.arf")
    drop(mailed, (BOUNCES / "malformed.eml").read_bytes(), "4.junk")
    result = CliRunner().invoke(main, ["--config", str(mailed.path), "bounces"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{ADA:<32} bounce    5.1.1  counted (1 of 3); moved to processed  [new/1.dsn]",
        f"{ALAN:<32} delay     4.4.1  not counted: a delay; moved to processed  [new/2.delay]",
        f"{GRACE:<32} complaint -      unsubscribed (complaint); moved to processed  [new/3.arf]",
        f"{'-':<32} junk      -      left in place: not a bounce or a report  [new/4.junk]",
    ]
    assert "4 finding(s) in the bounce mailbox" in result.stderr


def test_digest_bounces_without_a_bounces_section_says_what_to_add(make_settings):
    settings = make_settings()
    result = CliRunner().invoke(main, ["--config", str(settings.path), "bounces"])
    assert result.exit_code == 2
    assert 'no [bounces] section in the settings; add maildir = "PATH"' in result.stderr


def test_a_mailbox_that_cannot_be_read_never_stops_the_cycle(
    make_settings, fake_arxiv, mail_server, caplog
):
    settings = make_settings(extra=MAILDIR.replace('"bounces"', '"missing"'))
    news(fake_arxiv, DAY1, 0)
    with caplog.at_level(logging.WARNING):
        report = run_once(settings, clock=lambda: DAY1)
    assert report.ok and report.delivery.sent == 3
    assert "bounces: cannot read the bounce mailbox" in caplog.text
    assert "missing is not a Maildir (no new/ and cur/ in it)" in caplog.text
    result = CliRunner().invoke(main, ["--config", str(settings.path), "bounces"])
    assert result.exit_code == 1 and "check [bounces] maildir" in result.stderr


def test_the_cycle_reads_the_mailbox_before_planning(mailed, mail_server, fake_arxiv):
    drop(mailed, bounce("arf-complaint.eml", recipient=ADA, **digests(mail_server)[ADA]))
    day2 = DAY1 + timedelta(days=1)
    news(fake_arxiv, day2, 1)
    before = len(mail_server.received)
    run_once(mailed, clock=lambda: day2)
    assert sorted(i.rcpt_tos[0] for i in mail_server.received[before:]) == [ALAN, GRACE]
    assert processed(mailed) and suppressed(mailed) == {ADA: "complaint"}


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('[bounces]\nmaildir = "b"\nimap = "imaps://u@h/INBOX"\n', "set either maildir"),
        ("[bounces]\n", "set either maildir"),
        ('[bounces]\nimap = "imaps://u:secret@h/INBOX"\n', "DIGEST_BOUNCES_PASSWORD"),
        ('[bounces]\nimap = "pop3://u@h"\n', "expected a URL such as"),
        ('[smtp]\nhost = "h"\nsender = "s@x.org"\nreturn_path = "bounces+{token}"\n', "@"),
        ('[smtp]\nhost = "h"\nsender = "s@x.org"\nreturn_path = "{token}+{token}@x"\n', "@"),
    ],
)
def test_bad_bounce_settings_are_refused_naming_the_key(tmp_path, section, problem):
    config = tmp_path / "settings.toml"
    config.write_text('[[keywords]]\nname = "x"\n' + section)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert problem in str(caught.value)


def test_imap_settings_take_the_password_from_the_environment(tmp_path):
    config = tmp_path / "settings.toml"
    config.write_text(
        '[[keywords]]\nname = "x"\n[bounces]\nimap = "imaps://bounce%40x.org@mail.x.org/Bounces"\n'
    )
    bounces = load_settings(config, env={"DIGEST_BOUNCES_PASSWORD": "pw"}).bounces
    assert (bounces.imap_host, bounces.imap_port, bounces.imap_tls) == ("mail.x.org", 993, True)
    assert (bounces.imap_user, bounces.imap_folder, bounces.password) == (
        "bounce@x.org", "Bounces", "pw"
    )  # fmt: skip
    config.write_text('[[keywords]]\nname = "x"\n[bounces]\nmaildir = "mail/bounces"\n')
    assert load_settings(config).bounces.maildir == tmp_path / "mail" / "bounces"


# --- flufl.bounce's corpus of real bounces ----------------------------------------------------

# (file, {address: (kind, counts)}): the addresses are those flufl.bounce's own tests expect
# (tests/test_detectors.py); the class is digest's, from the status or code the bounce gives.
CORPUS = [
    ("postfix_01.txt", {"xxxxx@local.ie": ("bounce", True)}),  # 550 5.1.1
    ("postfix_02.txt", {"yyyyy@digicool.com": ("bounce", True)}),  # no code: flufl's call
    ("postfix_05.txt", {"userx@example.net": ("bounce", False)}),  # 554, no enhanced code
    ("exim_01.txt", {"userx@its.example.nl": ("bounce", True)}),
    ("qmail_03.txt", {"userx@example.jp": ("bounce", True)}),  # (#5.1.1)
    ("qmail_04.txt", {"userx@example.au": ("bounce", True)}),  # 550 to RCPT
    ("simple_19.txt", {"userx@example.com.ar": ("bounce", True)}),  # qmail, (#5.1.1)
    ("dsn_01.txt", {"userx@example.com": ("bounce", False)}),  # Status 5.0.0: disk quota
    ("dsn_02.txt", {"zzzzz@example.uk": ("bounce", False)}),  # failed, but 4.4.7: never counts
    ("dsn_05.txt", {"userx@example.cz": ("delay", False)}),
    ("dsn_10.txt", {"anne.person@dom.ain": ("bounce", True)}),  # 5.0.0, said: 550 unknown user
    ("dsn_11.txt", {"joem@example.com": ("bounce", True)}),
    ("dsn_14.txt", {"userx@example.com.dk": ("bounce", True)}),
    ("dsn_17.txt", {"userx@example.fi": ("delay", False)}),
    ("microsoft_01.txt", {"userx@example.COM": ("bounce", True)}),  # Exchange
    ("groupwise_01.txt", {"userx@example.EDU": ("bounce", True)}),
    ("yahoo_01.txt", {"userx@example.com": ("bounce", False)}),  # (#4.4.1)
    ("yahoo_02.txt", {"userx@example.es": ("bounce", True)}),
    ("yahoo_11.txt", {"bad_user@aol.com": ("bounce", True)}),
    ("aol_01.txt", {"screenname@aol.com": ("bounce", True)}),
    ("llnl_01.txt", {"user1@example.gov": ("bounce", True)}),
    ("caiwireless_01.txt", {"userx@example.com": ("bounce", True)}),
    ("simple_03.txt", {"userx@example.za": ("delay", False)}),
    ("smtp32_04.txt", {a: ("bounce", False) for a in (  # 553 5.3.0: not the address's class
        "after_another@example.net", "one_bad_address@example.net")}),
    ("netscape_01.txt", {"aaaaa@corel.com": ("bounce", True), "bbbbb@corel.com": ("bounce", True)}),
    ("sendmail_01.txt", {a: ("bounce", False) for a in (  # 554 Too many hops
        "zzzzz@shaft.coal.nl", "zzzzz@nfg.nl")}),
]  # fmt: skip
UNRECOGNISED = ["dumbass_01.txt"]  # flufl.bounce finds nobody in it: junk, left in place


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Return flufl.bounce's tests/data, downloaded once with pip (cached, never committed)."""
    target = CACHE / f"flufl_bounce-{CORPUS_VERSION}"
    if not (target / "tests" / "data").is_dir():
        CACHE.mkdir(exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=CACHE))
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--no-binary", ":all:", f"flufl.bounce=={CORPUS_VERSION}", "-d", str(work)],
                check=True, timeout=300,
            )  # fmt: skip
            (archive,) = work.glob("*.tar.gz")
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                    tar.extractall(work, filter="data")
                else:
                    tar.extractall(work)
            try:
                (work / target.name).rename(target)
            except OSError:  # another test worker was first
                assert (target / "tests" / "data").is_dir()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target / "tests" / "data"


def test_the_corpus_has_over_20_files_from_many_mail_systems():
    assert len(CORPUS) >= 20
    kinds = {name.split("_")[0] for name, _ in CORPUS}
    assert {"postfix", "exim", "qmail", "microsoft", "yahoo", "dsn", "groupwise"} <= kinds


@pytest.mark.parametrize(("name", "expected"), CORPUS, ids=[n for n, _ in CORPUS])
def test_real_bounces_name_the_right_address_and_class(corpus, name, expected):
    report = read_report((corpus / name).read_bytes())
    assert {r.address: (r.kind, r.counts) for r in report.recipients} == expected


def test_real_bounces_read_from_a_maildir_are_counted_and_moved(mailed, corpus):
    files = [n for n, _ in CORPUS] + UNRECOGNISED
    names = {drop(mailed, (corpus / n).read_bytes(), n): n for n in files}
    outcomes = read(mailed)
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    for outcome in outcomes:
        kind = outcome.kind
        counted = outcome.action.startswith("counted")
        found.setdefault(names[outcome.name], {})[outcome.address.casefold()] = (kind, counted)
    expected = {n: {a.casefold(): c for a, c in e.items()} for n, e in CORPUS}
    expected |= {u: {"": ("junk", False)} for u in UNRECOGNISED}
    assert found == expected
    assert sorted(processed(mailed)) == sorted(f"new/{n}" for n, _ in CORPUS)
    assert sorted(os.listdir(mailed.bounces.maildir / "new")) == UNRECOGNISED
    counted = collections.Counter(a for e in expected.values() for a, (_, c) in e.items() if c)
    assert counted["userx@example.com"] == 2  # in two bounces (of different mail): counts 2
    with Store(mailed.database) as store:
        assert {a: store.failures(a, LATER) for a in counted} == counted


# --- IMAP, against a real Dovecot --------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """Return a CA, and a certificate for 127.0.0.1 it signed, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    for number, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(files["cert"]), append=number > 0)
    return files


@pytest.fixture(scope="session")
def dovecot(tls_files):
    """Run a private Dovecot for the whole session (each test logs in as its own user)."""
    with Dovecot(tls_files["cert"], tls_files["key"]) as server:
        yield server


def imap_settings(make_settings, monkeypatch, url: str, extra: str = ""):
    monkeypatch.setenv("DIGEST_BOUNCES_PASSWORD", PASSWORD)
    return make_settings(
        extra=f'return_path = "{RETURN_PATH}"\n\n[bounces]\nimap = "{url}"\n{extra}'
    )


@pytest.mark.slow
def test_bounces_are_read_over_imap_and_moved_to_processed(
    dovecot, make_settings, monkeypatch, fake_arxiv, mail_server, caplog
):
    user = f"bounces-{uuid.uuid4().hex[:8]}"
    settings = imap_settings(
        make_settings, monkeypatch, f"imap://{user}@127.0.0.1:{dovecot.port}/INBOX"
    )
    news(fake_arxiv, DAY1, 0)
    run_once(settings, clock=lambda: DAY1)
    sent = digests(mail_server)
    dsn = bounce("postfix-user-unknown.eml", **sent[ADA])
    for data in (
        dsn,
        bounce("postfix-delay.eml", recipient=ALAN, **sent[ALAN]),
        bounce("dsn-without-recipient.eml", envelope=sent[GRACE]["envelope"]),
        (BOUNCES / "malformed.eml").read_bytes(),
        dsn,  # delivered twice
    ):
        dovecot.append(user, data)
    with caplog.at_level(logging.WARNING):
        outcomes = read(settings)
    assert summary(outcomes)[:4] == [
        (ADA, "bounce", "5.1.1", "counted (1 of 3); moved to processed"),
        (ALAN, "delay", "4.4.1", "not counted: a delay; moved to processed"),
        (GRACE, "bounce", "5.1.1", "counted (1 of 3); moved to processed"),
        ("", "junk", "", "left in place: not a bounce or a report"),
    ]
    assert (outcomes[4].address, outcomes[4].kind) == (ADA, "duplicate")
    assert [o.name for o in outcomes] == [f"UID {n}" for n in range(1, 6)]
    assert "bounces: UID 4 is neither a bounce nor a report; left in place" in caplog.text
    assert "imap:// sends the password unencrypted" in caplog.text
    inbox, done = dovecot.folder(user, "INBOX"), dovecot.folder(user, "processed")
    assert len(inbox) == 1 and b"has no boundary" in inbox[0]
    assert len(done) == 4 and b"Delayed Mail" in done[1]
    assert failures(settings, ADA) == 1 and failures(settings, GRACE) == 1
    assert [o.kind for o in read(settings)] == ["junk"]  # nothing counts twice


@pytest.mark.slow
def test_imaps_needs_a_trusted_certificate(
    dovecot, tls_files, make_settings, monkeypatch, tmp_path
):
    user = f"bounces-{uuid.uuid4().hex[:8]}"
    url = f"imaps://{user}@127.0.0.1:{dovecot.tls_port}/INBOX"
    shutil.copy(tls_files["ca"], tmp_path / "ca.pem")
    settings = imap_settings(make_settings, monkeypatch, url, 'ca_file = "ca.pem"\n')
    dovecot.append(user, bounce("postfix-user-unknown.eml", recipient=GRACE))
    assert summary(read(settings)) == [
        (GRACE, "bounce", "5.1.1", "counted (1 of 3); moved to processed")
    ]
    assert len(dovecot.folder(user, "processed")) == 1
    untrusted = imap_settings(make_settings, monkeypatch, url)
    with pytest.raises(BounceBoxError, match="certificate verify failed"):
        read(untrusted)


@pytest.mark.slow
def test_a_wrong_imap_password_is_a_warning_in_the_cycle(
    dovecot, make_settings, monkeypatch, fake_arxiv, mail_server, caplog
):
    settings = imap_settings(
        make_settings, monkeypatch, f"imap://someone@127.0.0.1:{dovecot.port}/INBOX"
    )
    monkeypatch.setenv("DIGEST_BOUNCES_PASSWORD", "wrong")
    settings = load_settings(settings.path)
    news(fake_arxiv, DAY1, 0)
    with caplog.at_level(logging.WARNING):
        assert run_once(settings, clock=lambda: DAY1).delivery.sent == 3
    assert "bounces: cannot read the bounce mailbox" in caplog.text
    assert "Authentication failed" in caplog.text


@pytest.mark.slow
def test_without_move_a_message_is_copied_and_only_it_expunged(dovecot, make_settings, monkeypatch):
    user = f"bounces-{uuid.uuid4().hex[:8]}"
    url = f"imap://{user}@127.0.0.1:{dovecot.port}/INBOX"
    settings = imap_settings(make_settings, monkeypatch, url)
    dovecot.append(user, (BOUNCES / "out-of-office.eml").read_bytes())
    dovecot.append(user, bounce("postfix-user-unknown.eml", recipient=GRACE))

    def without_move(bounces):  # a server that offers UIDPLUS but not MOVE (RFC 6851)
        box = bouncebox.open_box(bounces)
        box.capabilities.discard("MOVE")
        assert "UIDPLUS" in box.capabilities
        return box

    monkeypatch.setattr(digest.bounces, "open_box", without_move)
    assert [o.kind for o in read(settings)] == ["junk", "bounce"]
    inbox, done = dovecot.folder(user, "INBOX"), dovecot.folder(user, "processed")
    assert len(inbox) == 1 and b"Automatic reply" in inbox[0]
    assert len(done) == 1 and b"User unknown" in done[0]
