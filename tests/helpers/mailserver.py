"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it accepts."""

from __future__ import annotations

import asyncio
import collections
import email
import email.parser
import email.policy
import functools
import random
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

    @functools.cached_property
    def message(self) -> EmailMessage:
        """Parse the message with the email package (once: a digest takes about 2 ms)."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def headers(self) -> EmailMessage:
        """Parse the header block alone: a tenth of the time of `message`, for many messages."""
        return email.parser.BytesParser(policy=email.policy.default).parsebytes(  # type: ignore[return-value]
            self.data, headersonly=True
        )


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


class FaultyHandler(RecordingHandler):
    """Accept mail like a real relay, with injected faults (as Mailman 3's tests do).

    On `rate` of MAIL, RCPT and DATA commands (seeded), answer 421, 451 or 452, or drop the
    connection without answering; refuse `refused` addresses with 550 at RCPT (or with their
    own reply, when `refused` is a dict); answer every RCPT with `every_rcpt` (a format string
    of the address); refuse DATA to the recipients of `data_refused` with their reply; wait
    `delay` seconds before every reply; or, with `stall` set, never answer DATA.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        rate: float = 0.0,
        delay: float = 0.0,
        refused: frozenset[str] | dict[str, str] = frozenset(),
        every_rcpt: str | None = None,
        data_refused: dict[str, str] | None = None,
        stall: bool = False,
    ) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.rate, self.delay, self.stall = rate, delay, stall
        self.refused = (
            refused
            if isinstance(refused, dict)
            else dict.fromkeys(refused, "550 5.1.1 No such user here")
        )
        self.every_rcpt, self.data_refused = every_rcpt, data_refused or {}
        self.faults: collections.Counter[str] = collections.Counter()
        self.release = asyncio.Event()

    async def _fault(self, server, command: str) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.random.random() >= self.rate:
            return None
        fault = self.random.choice(["421", "451", "452", "drop"])
        self.faults[f"{command} {fault}"] += 1
        if fault == "drop":
            server.transport.abort()
            return "421 4.3.0 dropped"  # never reaches the client: the connection is gone
        text = {
            "421": "4.3.2 Service shutting down",
            "451": "4.3.0 Try again later",
            "452": "4.3.1 Insufficient storage",
        }[fault]
        return f"{fault} {text}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if fault := await self._fault(server, "MAIL"):
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if fault := await self._fault(server, "RCPT"):
            return fault
        if self.every_rcpt:
            return self.every_rcpt.format(address)
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.stall:
            await self.release.wait()
            return "451 4.3.0 Stalled"
        if fault := await self._fault(server, "DATA"):
            return fault
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.data_refused:
                return self.data_refused[rcpt]
        return await super().handle_DATA(server, session, envelope)

    def counts(self) -> collections.Counter[str]:
        """Return how many messages each recipient received."""
        return collections.Counter(r for item in self.received for r in item.rcpt_tos)
