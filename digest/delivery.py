"""The send phase: stream the outbox to a pool of connections, recording each delivery."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

from .config import Settings
from .mail import (
    MaildirTransport,
    SendError,
    SmtpConnection,
    Transport,
    build_message,
    greeting,
    personalise,
)
from .store import Edition, Message, Store
from .tokens import make_token

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryReport:
    """What the send phase did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0


def unsubscribe_url(settings: Settings, secret: bytes, email: str) -> str:
    """Return the one-click unsubscribe link of an address."""
    return f"{settings.base_url}/unsubscribe?token={make_token(secret, email)}"


class Delivery:
    """Send every pending outbox message once, through one transport per worker."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        secret: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
    ):
        self.stop = stop or threading.Event()
        self.settings = settings
        self.store = store
        self.secret = secret
        self.clock = clock
        self.report = DeliveryReport()
        self._editions: dict[int, Edition] = {}

    def _transports(self) -> list[Transport]:
        smtp = self.settings.smtp
        if smtp is None:
            return [MaildirTransport(self.settings.outbox)]
        return [SmtpConnection(smtp) for _ in range(smtp.connections)]

    def _edition(self, edition_id: int) -> Edition:
        if edition_id not in self._editions:
            if len(self._editions) > 64:
                self._editions.clear()
            self._editions[edition_id] = self.store.edition(edition_id)
        return self._editions[edition_id]

    def message(self, item: Message):
        """Build the personalised message of an outbox entry."""
        edition = self._edition(item.edition_id)
        url = unsubscribe_url(self.settings, self.secret, item.email)
        values = {"greeting": greeting(item.name), "unsubscribe_url": url, "email": item.email}
        return build_message(
            sender=self.settings.sender,
            list_name=self.settings.name,
            to_email=item.email,
            to_name=item.name,
            subject=edition.subject,
            text=personalise(edition.text, edition.placeholders, values, escape=False),
            html_body=personalise(edition.html, edition.placeholders, values, escape=True),
            message_id=item.message_id,
            unsubscribe_url=url,
            date=self.clock(),
        )

    async def run(self) -> DeliveryReport:
        """Send the whole outbox and return the counts."""
        transports = self._transports()
        queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=2 * len(transports))
        workers = [asyncio.create_task(self._worker(t, queue)) for t in transports]
        try:
            for item in self.store.pending():
                if self.stop.is_set():
                    log.info("send: stopping; the rest stays in the outbox for the next start")
                    break
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            for transport in transports:
                await transport.close()
        self.report.pending = self.store.count_pending()
        return self.report

    async def _worker(self, transport: Transport, queue: asyncio.Queue[Message | None]) -> None:
        while (item := await queue.get()) is not None:
            if self.store.is_suppressed(item.email):
                self.store.mark_skipped(item.id, "unsubscribed")
                self.report.skipped += 1
                continue
            sender = parseaddr(self.settings.sender)[1]
            try:
                message = self.message(item)
            except (ValueError, TypeError) as exc:  # e.g. a header that cannot be encoded
                self.store.mark_failed(item.id, f"cannot build the message: {exc}", True)
                self.report.failed += 1
                log.error("%s: cannot build the message (%s)", item.email, exc)
                continue
            try:
                await transport.send(message, sender, item.email)
            except SendError as exc:
                self.store.mark_failed(item.id, str(exc), exc.permanent)
                self.report.failed += 1
                log.warning("%s: not delivered (%s)", item.email, exc)
                continue
            self.store.mark_sent(item.id, self.clock())
            self.report.sent += 1
