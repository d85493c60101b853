"""Build digest messages and hand them to an SMTP server or a Maildir outbox."""

from __future__ import annotations

import html
import logging
import mailbox
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .config import SmtpSettings

log = logging.getLogger(__name__)


class SendError(Exception):
    """A message was not accepted; `permanent` tells whether retrying can help."""

    def __init__(self, message: str, permanent: bool, code: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code


def list_id(list_name: str, sender: str) -> str:
    """Return the List-Id header value (RFC 2919) for the list."""
    label = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"{list_name} <{label}.{domain}>"


def new_message_id(sender: str) -> str:
    """Return a fresh Message-ID in the sender's domain."""
    return make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")


def personalise(
    body: str, placeholders: dict[str, str], values: dict[str, str], escape: bool
) -> str:
    """Put one subscriber's details in place of an edition's placeholders."""
    for key, marker in placeholders.items():
        body = body.replace(marker, html.escape(values[key]) if escape else values[key])
    return body


def greeting(name: str) -> str:
    """Return the greeting line for a subscriber."""
    return f"Hello {name}," if name else "Hello,"


def build_message(
    *,
    sender: str,
    list_name: str,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
    html_body: str,
    message_id: str,
    unsubscribe_url: str,
    date: object,
) -> EmailMessage:
    """Build the multipart/alternative message with list and one-click unsubscribe headers."""
    display, address = parseaddr(sender)
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=display or list_name, addr_spec=address)
    message["To"] = Address(display_name=to_name, addr_spec=to_email)
    message["Subject"] = subject
    message["Date"] = format_datetime(date)  # type: ignore[arg-type]
    message["Message-ID"] = message_id
    message["List-Id"] = list_id(list_name, sender)
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


class Transport(Protocol):
    """Something that delivers one message at a time."""

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Deliver a message or raise SendError."""

    async def close(self) -> None:
        """Release connections."""


class MaildirTransport:
    """Deliver into a local Maildir folder, readable with any mail client."""

    def __init__(self, path: Path):
        self.box = mailbox.Maildir(path, create=True)

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Add the message to the Maildir's new/ folder."""
        try:
            self.box.add(message)
        except OSError as exc:
            raise SendError(f"cannot write to the Maildir: {exc}", permanent=False) from None

    async def close(self) -> None:
        """Nothing to release."""


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
            await client.login(s.username, s.password)
        return client

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send over this connection, opening it first if needed."""
        try:
            if self.client is None or not self.client.is_connected:
                self.client, self.sent = await self._connect(), 0
            errors, _ = await self.client.send_message(
                message, sender=sender, recipients=[recipient]
            )
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            raise SendError(
                f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600, code=exc.code
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=False) from None
        if errors:
            code, text = next(iter(errors.values()))
            raise SendError(f"{code} {text}", permanent=500 <= code < 600, code=code)
        self.sent += 1
        if self.sent >= self.settings.messages_per_connection:
            await self.close()

    async def close(self) -> None:
        """Say QUIT if possible and forget the connection."""
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
