"""Compose every message (digests, and one-off emails from templates) and send it.

Both kinds go the same way: `letter` writes a message for an address as written and, when it
is not ASCII, with its domain in ASCII, signed with DKIM when [smtp] dkim_* are set; `transport`
chooses the SMTP relay, else the Maildir outbox.
"""

from __future__ import annotations

import binascii
import html
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid, parseaddr

import jinja2

from . import headers
from .addresses import ascii_address
from .config import Settings
from .dkim import Signer
from .models import Letter
from .render import VOTE_TOKEN, charset_first, vote_slots
from .store import Edition
from .tokens import bounce_token
from .transport import transport

log = logging.getLogger(__name__)


def list_id(list_name: str, sender: str) -> str:
    """Return the List-Id header value (RFC 2919) for the list."""
    label = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"{headers.phrase(list_name)} <{label}.{domain}>"


def new_message_id(sender: str) -> str:
    """Return a fresh Message-ID in the sender's domain."""
    return make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")


def greeting(name: str) -> str:
    """Return the greeting line for a subscriber."""
    return f"Hello {name}," if name else "Hello,"


def header_line(name: str, value: str) -> str:
    """Return one header line: Subject as text (encoded-words), any other never encoded.

    See digest/headers.py: structured fields fold only where their grammar allows.
    """
    return headers.header(name, value)


def address_line(name: str, display: str, address: str) -> str:
    """Return an address header: the display name as a phrase (encoded if need be), folded."""
    return headers.mailbox(name, display, address)


def base64_lines(data: bytes) -> bytes:
    """Return data in base64, in lines of 76 characters (faster than base64.encodebytes)."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\n"


def alternative(head: str, text: str, page: str) -> bytes:
    """Return a message of head (its header lines) and a multipart/alternative body.

    The text part goes quoted-printable, the HTML part base64; both UTF-8.
    """
    boundary = f"=_digest_{secrets.token_hex(12)}"
    content_type = header_line("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    return b"".join(
        (
            (head + content_type + "\n").encode(),
            f'--{boundary}\nContent-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n".encode(),
            binascii.b2a_qp(text.encode(), istext=True),
            f'\n--{boundary}\nContent-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: base64\n\n".encode(),
            base64_lines(page.encode()),
            f"--{boundary}--\n".encode(),
        )
    )


class Personal:
    """A shared body cut once at its placeholders, filled in for each recipient by one join:
    the personal values (greeting, links, address), and a vote token for each paper's vote
    links, signed per recipient."""

    def __init__(self, body: str, placeholders: Mapping[str, str]):
        simple = {marker: key for key, marker in placeholders.items() if key != VOTE_TOKEN}
        patterns = [re.escape(marker) for marker in simple]
        if VOTE_TOKEN in placeholders:
            patterns.append(vote_slots(placeholders[VOTE_TOKEN]))
        self.texts: list[str] = []  # the shared text around the slots: one more than slots
        self.slots: list[str | tuple[str, str]] = []  # a value's key, or (paper id, vote)
        start = 0
        for match in re.finditer("|".join(patterns), body) if patterns else ():
            self.texts.append(body[start : match.start()])
            self.slots.append(
                simple[match[0]] if match[0] in simple else (match["paper"], match["vote"])
            )
            start = match.end()
        self.texts.append(body[start:])
        self.votes = {slot for slot in self.slots if isinstance(slot, tuple)}

    def fill(self, values: Mapping[str | tuple[str, str], str]) -> str:
        """Return the body with each slot's value: values[key] (a missing one: empty), and
        values[(paper id, vote)] the vote tokens (see Composer.compose)."""
        out = [""] * (2 * len(self.slots) + 1)
        out[0::2] = self.texts
        out[1::2] = [values.get(slot, "") for slot in self.slots]
        return "".join(out)


class Composer:
    """Compose one edition's messages: shared headers once, personal details per message."""

    def __init__(self, edition: Edition, sender: str, list_name: str):
        self.edition = edition
        display, address = parseaddr(sender)
        self.shared = (
            address_line("From", display or list_name, address)
            + header_line("Subject", edition.subject)
            + header_line("List-Id", list_id(list_name, sender))
            + "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
            + "Auto-Submitted: auto-generated\n"
            + "Precedence: bulk\n"
            + "MIME-Version: 1.0\n"
        )
        # Editions before 0.2 lack some placeholders, those before issue 19 the vote links.
        self.text = Personal(edition.text, edition.placeholders)
        self.html = Personal(edition.html, edition.placeholders)

    def compose(
        self,
        *,
        email: str,
        name: str,
        message_id: str,
        unsubscribe_url: str,
        date: datetime,
        manage_url: str = "",
        page_unsubscribe_url: str = "",
        vote_token: Callable[[str, str], str] | None = None,
        mine_url: str = "",
    ) -> bytes:
        """Return the message bytes: multipart/alternative, text (QP) and HTML (base64); the
        body links to page_unsubscribe_url (if given), List-Unsubscribe to unsubscribe_url.

        `vote_token(paper_id, vote)` signs the recipient's vote links (Links.vote_tokens);
        `mine_url` is the reader's page of their own topics (Links.mine), for editions that
        have own-topic sections (a `mine_url` placeholder).
        """
        values = {
            "greeting": greeting(name),
            "unsubscribe_url": page_unsubscribe_url or unsubscribe_url,
            "manage_url": manage_url or unsubscribe_url,
            "email": email,
            "mine_url": mine_url,
        }
        votes = self.text.votes | self.html.votes
        if votes and vote_token is None:
            raise ValueError("this digest has vote links: compose it with vote_token")
        plain: dict[str | tuple[str, str], str] = {v: vote_token(*v) for v in votes if vote_token}
        escaped = plain.copy()  # the tokens need no escaping: URL-safe base64 and dots
        plain.update(values)
        escaped.update((k, html.escape(v)) for k, v in values.items())
        text = self.text.fill(plain)
        page = self.html.fill(escaped)
        head = (
            self.shared
            + address_line("To", name, email)
            + header_line("Date", format_datetime(date))
            + header_line("Message-ID", message_id)
            + header_line("List-Unsubscribe", f"<{unsubscribe_url}>")
        )
        return alternative(head, text, page)


@dataclass(frozen=True, slots=True)
class Email:
    """One email to one person, not a digest: who, about what, and its two bodies."""

    email: str
    name: str
    subject: str
    text: str
    html: str
    kind: str = "email"  # what the log lines call it: "confirmation", ...


def render_email(
    env: jinja2.Environment,
    template: str,
    to: str,
    name: str,
    kind: str,
    context: Mapping[str, object],
) -> Email:
    """Render templates/email/{template}.subject.txt, .txt and .html into an email to a person."""
    subject = env.get_template(f"email/{template}.subject.txt").render(context)
    text = env.get_template(f"email/{template}.txt").render(context)
    html = env.get_template(f"email/{template}.html").render(context)
    return Email(to, name, " ".join(subject.split()), text, charset_first(html), kind)


def compose_email(email: Email, sender: str, list_name: str, date: datetime, to: str = "") -> bytes:
    """Return an email's bytes (To: `to`, else as written): text (QP) and HTML (base64)."""
    display, address = parseaddr(sender)
    head = (
        address_line("From", display or list_name, address)
        + address_line("To", email.name, to or email.email)
        + header_line("Subject", email.subject)
        + header_line("Date", format_datetime(date))
        + header_line("Message-ID", new_message_id(sender))
        + "Auto-Submitted: auto-generated\n"
        + "X-Auto-Response-Suppress: All\n"
        + "MIME-Version: 1.0\n"
    )
    return alternative(head, email.text, email.html)


def letter(recipient: str, compose: Callable[[str], bytes], signer: Signer | None) -> Letter:
    """Compose a message to an address as written and, for a non-ASCII address, with its
    domain in ASCII too (when it has one); sign both with DKIM when there is a signer.

    `compose` returns the message with a given address in its To: header.
    """
    message = compose(recipient)
    ascii_form: str | None = None
    ascii_message: bytes | None = None
    if not recipient.isascii():
        ascii_form = ascii_address(recipient)  # None: the relay must offer SMTPUTF8
        ascii_message = compose(ascii_form) if ascii_form else None
    if signer is not None:
        message = signer.sign(message)
        ascii_message = ascii_message and signer.sign(ascii_message)
    return Letter(recipient, message, ascii_form, ascii_message)


def email_letter(email: Email, settings: Settings, date: datetime) -> Letter:
    """Compose an email as the digests are: its ASCII form too, DKIM-signed if [smtp] says so."""
    signer = Signer.cached(settings.smtp)  # the key is read again only when its file changes

    def compose(to: str) -> bytes:
        return compose_email(email, settings.sender, settings.name, date, to)

    return letter(email.email, compose, signer)


def envelope_sender(settings: Settings, secret: bytes, recipient: str) -> str:
    """Return the envelope sender of mail to recipient: [smtp] return_path, its {token} the
    recipient's signed bounce token (VERP), else the From address."""
    path = settings.smtp.return_path if settings.smtp else None
    if path:
        return path.replace("{token}", bounce_token(secret, recipient))
    return parseaddr(settings.sender)[1]


async def send_email(email: Email, settings: Settings, date: datetime, secret: bytes) -> None:
    """Send one email over its own connection, from the return path of its recipient (VERP);
    raise SendError if it is not accepted."""
    way = transport(settings)
    try:
        sender = envelope_sender(settings, secret, email.email)
        await way.send(email_letter(email, settings, date), sender)
    finally:
        await way.close()
