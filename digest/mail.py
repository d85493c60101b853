"""Compose every message (digests, and one-off emails from templates) and send it.

Both kinds go the same way: `letter` writes a message for an address as written and, when it
is not ASCII, with its domain in ASCII, signed with DKIM when [smtp] dkim_* are set; `transport`
chooses the SMTP relay, else the Maildir outbox.
"""

from __future__ import annotations

import binascii
import html
import logging
import mailbox
import re
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid, parseaddr
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import jinja2

from . import headers
from .addresses import ascii_address
from .config import Settings, SmtpSettings
from .dkim import Signer
from .files import keep_private
from .models import Letter
from .render import charset_first
from .store import Edition
from .tokens import bounce_token

log = logging.getLogger(__name__)

_ENHANCED_RE = re.compile(r"\s*5\.([0-9]{1,3})\.([0-9]{1,3})\b")


class Failure(Enum):
    """How a failed delivery attempt should be treated, by who is at fault."""

    TRANSIENT = "transient"  # connection, timeout, 4xx: try again later
    BOUNCE = "bounce"  # 5.1.x / 5.2.x: the address or mailbox is refused; counts to suppression
    REFUSED = "refused"  # 5.7.x policy, relay access, content: this message, nobody's address
    FATAL = "fatal"  # login refused, sender refused: stop sending this cycle, fix the settings


class SendError(Exception):
    """A message was not accepted, with how to treat the failure."""

    def __init__(self, message: str, failure: Failure, code: int | None = None):
        super().__init__(message)
        self.failure = failure
        self.code = code


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

    def _personal(self, body: str, values: dict[str, str], escape: bool) -> str:
        for key, marker in self.edition.placeholders.items():  # editions before 0.2 lack some
            value = values.get(key, "")
            body = body.replace(marker, html.escape(value) if escape else value)
        return body

    def compose(
        self,
        *,
        email: str,
        name: str,
        message_id: str,
        unsubscribe_url: str,
        date: datetime,
        manage_url: str = "",
    ) -> bytes:
        """Return the message bytes: multipart/alternative, text (QP) and HTML (base64)."""
        values = {
            "greeting": greeting(name),
            "unsubscribe_url": unsubscribe_url,
            "manage_url": manage_url or unsubscribe_url,
            "email": email,
        }
        text = self._personal(self.edition.text, values, escape=False)
        page = self._personal(self.edition.html, values, escape=True)
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


class Transport(Protocol):
    """Something that delivers one message at a time."""

    async def send(self, letter: Letter, sender: str) -> None:
        """Deliver a message or raise SendError."""

    async def close(self) -> None:
        """Release connections."""


class PrivateMaildir(mailbox.Maildir):
    """A Maildir whose messages are created 0600 whatever the umask (they hold addresses)."""

    def _create_tmp(self) -> Any:
        handle = super()._create_tmp()  # type: ignore[misc]  # the file each message is written to
        keep_private(handle.fileno())
        return handle


class MaildirTransport:
    """Deliver into a local Maildir folder, readable with any mail client."""

    def __init__(self, path: Path):
        try:
            self.box = PrivateMaildir(path, create=True)
        except OSError as exc:
            raise SendError(
                f"cannot create the Maildir {path} ({exc.strerror}); check [digest] outbox",
                Failure.FATAL,
            ) from None

    async def send(self, letter: Letter, sender: str) -> None:
        """Add the message, the address as written, to the Maildir's new/ folder."""
        try:
            self.box.add(letter.message)
        except OSError as exc:
            raise SendError(f"cannot write to the Maildir: {exc}", Failure.FATAL) from None

    async def close(self) -> None:
        """Nothing to release."""


def classify(exc: Exception) -> SendError:
    """Turn an aiosmtplib or socket error into a SendError saying who is at fault."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        exc = exc.recipients[0] if exc.recipients else aiosmtplib.SMTPResponseException(554, "")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}".strip()
        if exc.code < 500:
            return SendError(text, Failure.TRANSIENT, exc.code)
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
            return SendError(text, _fault(exc), exc.code)
        # A refused login, sender or greeting is the same for every message.
        return SendError(f"{type(exc).__name__}: {text}", Failure.FATAL, exc.code)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(
            f"the server's certificate is not trusted ({exc.verify_message}); set "
            "[smtp] ca_file to the CA that signed it",
            Failure.FATAL,
        )
    return SendError(f"{type(exc).__name__}: {exc}".rstrip(": "), Failure.TRANSIENT)


def _fault(exc: aiosmtplib.SMTPResponseException) -> Failure:
    """Tell a refused address (a bounce) from a refused sender, relay or content (RFC 3463)."""
    enhanced = _ENHANCED_RE.match(exc.message)
    if enhanced:
        subject, detail = int(enhanced[1]), int(enhanced[2])
        # 5.1.x: bad address; 5.2.x: mailbox problems (but 5.2.3 is the message's size).
        if subject == 1 or (subject == 2 and detail != 3):
            return Failure.BOUNCE
        return Failure.REFUSED  # 5.7.x policy, relay, spam; 5.3/5.6 content; 5.4/5.5 routing
    # Without an enhanced code only an address refused with 550/551/553 blames the address.
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused) and exc.code in (550, 551, 553):
        return Failure.BOUNCE
    return Failure.REFUSED


class SmtpConnection:
    """One reusable SMTP connection, reopened after an error or enough messages."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None
        self.sent = 0

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.tls,
            start_tls=s.starttls,
            cert_bundle=str(s.ca_file) if s.ca_file else None,
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()  # to know the relay's extensions (SMTPUTF8) before sending
        if s.username and s.password:
            try:
                await client.login(s.username, s.password)
            except BaseException:
                client.close()
                raise
        return client

    async def send(self, letter: Letter, sender: str) -> None:
        """Send over this connection, opening it first if needed.

        An address that is not ASCII goes as written when the relay offers SMTPUTF8, else
        with its domain IDNA-encoded; one with a non-ASCII local part needs SMTPUTF8.
        """
        try:
            if self.client is None or not self.client.is_connected:
                self.client, self.sent = await self._connect(), 0
            if letter.recipient.isascii() or self.client.supports_extension("smtputf8"):
                utf8 = [] if letter.recipient.isascii() else ["SMTPUTF8"]
                await self.client.sendmail(
                    sender, [letter.recipient], letter.message, mail_options=utf8
                )
            elif letter.ascii_recipient and letter.ascii_message:
                await self.client.sendmail(sender, [letter.ascii_recipient], letter.ascii_message)
            else:
                raise SendError(
                    "the address has non-ASCII characters before the @, which needs a relay "
                    "that offers SMTPUTF8; this one does not",
                    Failure.REFUSED,
                )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise classify(exc) from None
        self.sent += 1
        if self.sent >= self.settings.messages_per_connection:
            await self.close()

    async def close(self) -> None:
        """Say QUIT if possible and forget the connection."""
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit(timeout=2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def transport(settings: Settings) -> Transport:
    """Return a fresh way to send mail: a connection to the SMTP relay, else the Maildir outbox."""
    if settings.smtp is not None:
        return SmtpConnection(settings.smtp)
    return MaildirTransport(settings.outbox)


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
