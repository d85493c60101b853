"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it accepts."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """Parse the message with the email package."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class RecordingHandler:
    """Accept every message and keep it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 OK"


def free_port() -> int:
    """Return a port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailServer:
    """aiosmtpd in a background thread, with the handler's messages at hand."""

    def __init__(self, handler: RecordingHandler | None = None, **kwargs) -> None:
        self.handler = handler or RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        """Return a copy of what was accepted so far."""
        with self.handler.lock:
            return list(self.handler.received)

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        """Return the accepted messages grouped by envelope recipient."""
        found: dict[str, list[EmailMessage]] = {}
        for item in self.received:
            for rcpt in item.rcpt_tos:
                found.setdefault(rcpt, []).append(item.message)
        return found

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Poll until at least count messages arrived, or fail after timeout."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.received)}")
            time.sleep(0.01)
        return self.received
