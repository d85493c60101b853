"""One-off emails: rendered from templates/email/<name>.*, composed and sent as digests are."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

from digest import signups
from digest.links import Links
from digest.mail import email_letter, send_email
from digest.render import make_environment
from digest.transport import MaildirTransport, SmtpConnection, transport

NOW = datetime(2025, 11, 27, 6, 0, tzinfo=UTC)
SECRET = b"a test secret of at least thirty-two bytes"
NONCE = "a-sign-up-nonce-0123"


def confirmation(settings, known: bool, env=None):
    env = env or make_environment(settings.templates)
    topics = [settings.keywords[0].key]
    return signups.signup_email(
        settings, env, SECRET, NONCE, "nora@example.org", topics, NOW, known
    )


def test_a_confirmation_is_rendered_from_its_three_templates(make_settings):
    settings = make_settings(smtp=False)
    links = Links(settings.base_url, SECRET)
    mail = confirmation(settings, known=False)
    assert (mail.email, mail.name, mail.kind) == ("nora@example.org", "", "confirmation")
    assert mail.subject == f"Confirm your subscription to {settings.name}"
    confirm = links.confirm(NONCE, NOW + signups.VALID_FOR)
    assert confirm in mail.text and confirm in mail.html
    assert mail.html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in mail.html
    note = confirmation(settings, known=True)
    assert note.kind == "subscribed note"
    assert note.subject == f"You are already subscribed to {settings.name}"
    assert "/confirm?" not in note.text and links.manage("nora@example.org", 0) in note.text
    assert links.unsubscribe("nora@example.org") in note.html


def test_an_operator_can_override_each_template_of_the_confirmation(make_settings, tmp_path):
    folder = tmp_path / "mine"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "confirm.subject.txt").write_text("Welcome,\n  {{ email }}!\n")
    (folder / "email" / "confirm.txt").write_text("Click {{ confirm_url }}\n")
    settings = dataclasses.replace(make_settings(smtp=False), templates=folder)
    mail = confirmation(settings, known=False)
    assert mail.subject == "Welcome, nora@example.org!"  # one line, however it was written
    link = Links(settings.base_url, SECRET).confirm(NONCE, NOW + signups.VALID_FOR)
    assert mail.text == f"Click {link}\n"
    assert "Confirm my subscription" in mail.html  # the shipped HTML, not overridden


def test_transport_is_the_relay_when_smtp_is_set_else_the_maildir(make_settings):
    assert isinstance(transport(make_settings()), SmtpConnection)
    assert isinstance(transport(make_settings(smtp=False)), MaildirTransport)


async def test_an_email_without_a_relay_lands_in_the_outbox(make_settings):
    settings = make_settings(smtp=False)
    await send_email(confirmation(settings, known=False), settings, NOW, b"secret")
    (path,) = (Path(settings.outbox) / "new").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "nora@example.org"  # no name before confirmation
    assert message["Subject"] == f"Confirm your subscription to {settings.name}"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert "/confirm?token=" in message.get_body(("plain",)).get_content()


def test_an_address_with_a_non_ascii_domain_gets_an_ascii_form_too(make_settings):
    settings = make_settings(smtp=False)
    mail = dataclasses.replace(confirmation(settings, False), email="zoe@bücher.de", name="Nora")
    letter = email_letter(mail, settings, NOW)
    assert (letter.recipient, letter.ascii_recipient) == ("zoe@bücher.de", "zoe@xn--bcher-kva.de")
    assert b"To: Nora <zoe@b\xc3\xbccher.de>" in letter.message
    assert b"To: Nora <zoe@xn--bcher-kva.de>" in letter.ascii_message
