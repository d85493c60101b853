"""Compose digest messages and hand them to an SMTP server or a Maildir outbox."""

from __future__ import annotations

import binascii
import html
import logging
import mailbox
import re
import secrets
import ssl
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from enum import Enum
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .config import SmtpSettings
from .store import Edition

log = logging.getLogger(__name__)


class Failure(Enum):
    """How a failed delivery attempt should be treated."""

    TRANSIENT = "transient"  # connection, timeout, 4xx: try again later
    PERMANENT = "permanent"  # 5xx to RCPT or DATA: this message to this address is refused
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
    return f"{list_name} <{label}.{domain}>"


def new_message_id(sender: str) -> str:
    """Return a fresh Message-ID in the sender's domain."""
    return make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")


def greeting(name: str) -> str:
    """Return the greeting line for a subscriber."""
    return f"Hello {name}," if name else "Hello,"


def _header(name: str, value: str) -> str:
    """Return one header line, RFC 2047-encoded when not ASCII; refuse line breaks.

    Messages are built with LF line ends, as Maildir stores them; aiosmtplib sends CRLF.
    """
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} header value contains a line break")
    if not value.isascii():
        value = Header(value, "utf-8", header_name=name).encode()
    return f"{name}: {value}\n"


def _base64_lines(data: bytes) -> bytes:
    """Return data in base64, in lines of 76 characters (faster than base64.encodebytes)."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + b"\n"


class Composer:
    """Compose one edition's messages: shared headers once, personal details per message."""

    def __init__(self, edition: Edition, sender: str, list_name: str):
        self.edition = edition
        display, address = parseaddr(sender)
        self.envelope_from = address
        self.shared = (
            _header("From", formataddr((display or list_name, address), "utf-8"))
            + _header("Subject", edition.subject)
            + _header("List-Id", list_id(list_name, sender))
            + "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
            + "Auto-Submitted: auto-generated\n"
            + "Precedence: bulk\n"
            + "MIME-Version: 1.0\n"
        )

    def _personal(self, body: str, values: dict[str, str], escape: bool) -> str:
        for key, marker in self.edition.placeholders.items():
            body = body.replace(marker, html.escape(values[key]) if escape else values[key])
        return body

    def compose(
        self, *, email: str, name: str, message_id: str, unsubscribe_url: str, date: datetime
    ) -> bytes:
        """Return the message bytes: multipart/alternative, text (QP) and HTML (base64)."""
        values = {"greeting": greeting(name), "unsubscribe_url": unsubscribe_url, "email": email}
        text = self._personal(self.edition.text, values, escape=False)
        page = self._personal(self.edition.html, values, escape=True)
        boundary = f"=_digest_{secrets.token_hex(12)}"
        head = (
            self.shared
            + _header("To", formataddr((name, email), "utf-8"))
            + _header("Date", format_datetime(date))
            + _header("Message-ID", message_id)
            + _header("List-Unsubscribe", f"<{unsubscribe_url}>")
            + f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
        )
        return b"".join(
            (
                head.encode(),
                f'--{boundary}\nContent-Type: text/plain; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\n".encode(),
                binascii.b2a_qp(text.encode(), istext=True),
                f'\n--{boundary}\nContent-Type: text/html; charset="utf-8"\n'
                "Content-Transfer-Encoding: base64\n\n".encode(),
                _base64_lines(page.encode()),
                f"--{boundary}--\n".encode(),
            )
        )


class Transport(Protocol):
    """Something that delivers one message at a time."""

    async def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Deliver a message or raise SendError."""

    async def close(self) -> None:
        """Release connections."""


class MaildirTransport:
    """Deliver into a local Maildir folder, readable with any mail client."""

    def __init__(self, path: Path):
        self.box = mailbox.Maildir(path, create=True)

    async def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Add the message to the Maildir's new/ folder."""
        try:
            self.box.add(message)
        except OSError as exc:
            raise SendError(f"cannot write to the Maildir: {exc}", Failure.FATAL) from None

    async def close(self) -> None:
        """Nothing to release."""


def classify(exc: Exception) -> SendError:
    """Turn an aiosmtplib or socket error into a SendError saying what to do about it."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        exc = exc.recipients[0] if exc.recipients else aiosmtplib.SMTPResponseException(554, "")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}".strip()
        if exc.code < 500:
            return SendError(text, Failure.TRANSIENT, exc.code)
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
            return SendError(text, Failure.PERMANENT, exc.code)
        # A refused login, sender or greeting is the same for every message.
        return SendError(f"{type(exc).__name__}: {text}", Failure.FATAL, exc.code)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(
            f"the server's certificate is not trusted ({exc.verify_message}); set "
            "[smtp] ca_file to the CA that signed it",
            Failure.FATAL,
        )
    return SendError(f"{type(exc).__name__}: {exc}".rstrip(": "), Failure.TRANSIENT)


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
        if s.username and s.password:
            try:
                await client.login(s.username, s.password)
            except BaseException:
                client.close()
                raise
        return client

    async def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Send over this connection, opening it first if needed."""
        try:
            if self.client is None or not self.client.is_connected:
                self.client, self.sent = await self._connect(), 0
            await self.client.sendmail(sender, [recipient], message)
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
