"""Refusals blame the right party: the address, the message, or the relay itself."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import timedelta
from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest
from click.testing import CliRunner
from helpers.builders import changed
from helpers.cycles import DAY1, news, outbox_status, subscribers, suppressed, wide_first_run
from helpers.mailserver import FaultyHandler, MailServer, RecordingHandler

from digest.cli import main
from digest.pipeline import run_once
from digest.store import Store
from digest.transport import Failure, classify


def three_cycles(settings, fake_arxiv):
    """Run three daily cycles, each with news for everyone; return their reports."""
    reports = []
    for day in range(3):
        news(fake_arxiv, DAY1 + timedelta(days=day), day)
        reports.append(run_once(settings, clock=lambda d=day: DAY1 + timedelta(days=d)))
    return reports


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("550 5.1.1 <a@x.org>: Recipient address rejected: User unknown", Failure.BOUNCE),
        ("552 5.2.2 Mailbox full", Failure.BOUNCE),
        ("550 5.2.1 Mailbox disabled", Failure.BOUNCE),
        ("552 5.2.3 Message too big for this mailbox", Failure.REFUSED),
        ("554 5.7.1 <a@x.org>: Relay access denied", Failure.REFUSED),
        ("550 5.7.1 Message rejected as spam", Failure.REFUSED),
        ("553 5.7.1 Sender address rejected: not owned by user", Failure.REFUSED),
        ("550 No such user", Failure.BOUNCE),  # no enhanced code: 550 to RCPT is the address
        ("554 Transaction failed", Failure.REFUSED),
        ("451 4.3.0 Try again later", Failure.TRANSIENT),
    ],
)
def test_refusals_are_classified_by_the_enhanced_status_code(reply, expected):
    import aiosmtplib

    code, text = reply.split(" ", 1)
    assert classify(aiosmtplib.SMTPRecipientRefused(int(code), text, "a@x.org")).failure is (
        expected
    )


def test_data_refusals_without_an_enhanced_code_are_never_bounces():
    import aiosmtplib

    assert classify(aiosmtplib.SMTPDataError(550, "Rejected")).failure is Failure.REFUSED
    assert classify(aiosmtplib.SMTPDataError(550, "5.1.1 unknown")).failure is Failure.BOUNCE


def test_a_relay_that_refuses_every_recipient_suppresses_nobody(make_settings, fake_arxiv, caplog):
    handler = FaultyHandler(every_rcpt="554 5.7.1 <{}>: Relay access denied")
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(30)))
        settings = changed(settings, smtp_port=server.port)
        with caplog.at_level(logging.ERROR):
            reports = three_cycles(settings, fake_arxiv)
    for report in reports:
        assert not report.ok and report.delivery.sent == 0 and report.delivery.bounced == 0
        assert "the relay refused 10 different addresses in a row" in report.delivery.aborted
        assert "Relay access denied" in report.delivery.aborted
    assert "554 5.7.1 <user000" in caplog.text and "check [smtp] sender, the login" in caplog.text
    assert suppressed(settings) == {}
    assert outbox_status(settings) == {"pending": 90}  # everything waits for a fixed relay
    with Store(settings.database) as store:
        assert store.db.execute("SELECT count(*) FROM bounces").fetchone() == (0,)


def test_a_relay_that_calls_every_address_unknown_suppresses_nobody(make_settings, fake_arxiv):
    # A relay that only knows its own domain says "user unknown" to everyone else.
    handler = FaultyHandler(every_rcpt="550 5.1.1 <{}>: Recipient address rejected")
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(3)))  # a small list
        settings = changed(settings, smtp_port=server.port)
        reports = three_cycles(settings, fake_arxiv)
    assert all(r.delivery.bounced == 0 and r.delivery.aborted for r in reports)
    assert suppressed(settings) == {}


@pytest.mark.slow
def test_one_unknown_address_among_200_is_suppressed_after_three_cycles(make_settings, fake_arxiv):
    bad = "user00077@example.org"
    handler = FaultyHandler(refused=frozenset({bad}))
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(200)))
        settings = changed(settings, smtp_port=server.port, smtp_connections=4)
        reports = three_cycles(settings, fake_arxiv)
        assert [r.delivery.failed for r in reports] == [1, 1, 1]
        assert [r.delivery.sent for r in reports] == [199, 199, 199]
        assert reports[-1].delivery.bounced == 1 and reports[-1].delivery.aborted is None
        assert suppressed(settings) == {bad: "bounced"}
        counts = handler.counts()
    assert bad not in counts and len(counts) == 199


def test_spam_refused_at_data_is_not_a_bounce(make_settings, fake_arxiv):
    flagged = "user00001@example.org"
    handler = FaultyHandler(data_refused={flagged: "554 5.7.1 Message rejected as spam"})
    with MailServer(handler) as server:
        settings = wide_first_run(make_settings(subscribers=subscribers(6)))
        settings = changed(settings, smtp_port=server.port)
        reports = three_cycles(settings, fake_arxiv)
    assert [r.delivery.failed for r in reports] == [1, 1, 1]
    assert all(r.delivery.bounced == 0 for r in reports)
    assert suppressed(settings) == {}
    with Store(settings.database) as store:
        errors = store.db.execute("SELECT DISTINCT last_error FROM outbox WHERE status = 'failed'")
        assert errors.fetchall() == [("554 5.7.1 Message rejected as spam",)]
        assert store.db.execute("SELECT count(*) FROM bounces").fetchone() == (0,)


def test_bounces_can_be_undone_in_bulk(make_settings):
    settings = make_settings()
    with Store(settings.database) as store:
        store.suppress("old@example.org", "bounced", DAY1 - timedelta(days=30))
        store.suppress("new@example.org", "bounced", DAY1)
        store.suppress("left@example.org", "unsubscribed", DAY1)
        store.record_bounce("new@example.org", "550 5.1.1", DAY1)
    runner = CliRunner()
    config = ["--config", str(settings.path), "subscribers"]
    result = runner.invoke(main, [*config, "--resubscribe-bounced", "--since", "2025-11-01"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "new@example.org is subscribed again",
        "1 bounced address(es) subscribed again",
    ]
    assert suppressed(settings) == {
        "old@example.org": "bounced",
        "left@example.org": "unsubscribed",
    }
    with Store(settings.database) as store:
        assert store.db.execute("SELECT count(*) FROM bounces").fetchone() == (0,)
    result = runner.invoke(main, [*config, "--resubscribe-bounced"])
    assert "1 bounced address(es) subscribed again" in result.output
    assert suppressed(settings) == {"left@example.org": "unsubscribed"}


# --- international addresses and long names ---------------------------------------------------

INTERNATIONAL = (
    "email,name,keywords\nü@example.org,Ü,\nuser@bücher.de,Bücher,\nada@example.org,Ada,\n"
)


def test_international_addresses_go_as_written_when_the_relay_offers_smtputf8(
    make_settings, fake_arxiv
):
    with MailServer(RecordingHandler(), enable_SMTPUTF8=True) as server:
        settings = wide_first_run(make_settings(subscribers=INTERNATIONAL))
        report = run_once(changed(settings, smtp_port=server.port), clock=lambda: DAY1)
        assert report.ok and report.delivery.sent == 3
        got = {r.rcpt_tos[0]: r.data.decode() for r in server.received}  # RFC 6532: UTF-8
    assert sorted(got) == ["ada@example.org", "user@bücher.de", "ü@example.org"]
    for address in ("ü@example.org", "user@bücher.de"):
        message = email.message_from_string(got[address], policy=email.policy.default)
        assert message["To"].addresses[0].addr_spec == address


def test_without_smtputf8_domains_are_idna_encoded_and_local_parts_refused(
    make_settings, fake_arxiv
):
    with MailServer(RecordingHandler(), enable_SMTPUTF8=False) as server:  # on by default
        settings = wide_first_run(make_settings(subscribers=INTERNATIONAL))
        report = run_once(changed(settings, smtp_port=server.port), clock=lambda: DAY1)
        got = server.by_recipient()
    assert sorted(got) == ["ada@example.org", "user@xn--bcher-kva.de"]
    assert got["user@xn--bcher-kva.de"][0]["To"].addresses[0].addr_spec == ("user@xn--bcher-kva.de")
    assert report.delivery.sent == 2 and report.delivery.failed == 1
    assert report.delivery.bounced == 0 and suppressed(settings) == {}
    with Store(settings.database) as store:
        (error,) = store.db.execute("SELECT last_error FROM outbox WHERE status = 'failed'")
    assert "needs a relay that offers SMTPUTF8" in error[0]


def test_a_3000_character_name_is_folded_and_delivered(make_settings, fake_arxiv, mail_server):
    name = "Zoë " + "Q" * 2000 + " " + "Ω" * 996
    settings = wide_first_run(
        make_settings(subscribers=f"email,name,keywords\nz@example.org,{name},\n")
    )
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok and report.delivery.sent == 1
    (received,) = mail_server.received
    head = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    assert max(len(line) for line in head) <= 998  # RFC 5322's hard limit
    to = head.index(next(line for line in head if line.startswith("To: ")))
    folded = [head[to], *(line for line in head[to + 1 :] if line[:1] == " ")]
    assert len(folded) > 40 and max(len(line) for line in folded) <= 78  # the 78 it prefers
    # RFC 2047 decoding (the email package's address parser keeps the space between encoded
    # words, against section 6.2; its unstructured and legacy decoders agree with this one).
    display, address = parseaddr(" ".join(line.strip() for line in folded)[4:])
    assert str(make_header(decode_header(display))) == name
    assert address == "z@example.org"
