"""Hand a message to the SMTP relay or a Maildir, and say whose fault a refusal is."""

from __future__ import annotations

import logging
import mailbox
import re
import ssl
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from .config import Settings, SmtpSettings
from .files import keep_private
from .models import Letter

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
