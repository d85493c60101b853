"""The web's emails, each sent at its turn under [smtp] rate_limit and hourly_limit.

A sign-up's email takes a turn in the database after every message sent before it, digests
included (Store.reserve_notice), and a running cycle counts these turns in its own limits. One
loop sends the emails as their turns come; one that waits for the hourly limit is kept in the
database, so a restart does not lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from ..mail import Email, send_email
from ..store import Store, StoreError
from ..transport import SendError
from .base import Endpoint, mask

log = logging.getLogger(__name__)

HORIZON = 3600.0  # seconds: an email whose turn is further away is not sent (an hour waits)
QUEUED = 60.0  # seconds: an email waiting longer than this is said to be queued
POLL = 30.0  # seconds between looks at the clock while the next turn is far
WAIT = 10.0  # seconds a write waits for the database (no request waits on these)


class Mailer:
    """Give each email its turn, and send it when the turn comes."""

    def __init__(self, endpoint: Endpoint, compose: Callable[[Store, str], Email | None]):
        self.endpoint = endpoint
        self.compose = compose  # (store, nonce) -> the email of that sign-up, None if gone
        self.composers: dict[str, Callable[[Store, str], Email | None]] = {}  # by nonce prefix
        smtp = endpoint.settings.smtp
        self.interval = 1.0 / smtp.rate_limit if smtp and smtp.rate_limit else 0.0
        self.hourly = smtp.hourly_limit if smtp else 0
        self.poll = POLL
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()  # nothing to send but emails queued for the hour
        self.drained.set()
        self.stopping = False

    def route(self, prefix: str, compose: Callable[[Store, str], Email | None]) -> None:
        """Compose the emails whose nonce starts with prefix with this (not a sign-up's)."""
        self.composers[prefix] = compose

    def composer(self, nonce: str) -> Callable[[Store, str], Email | None]:
        """Return what composes the email of a nonce."""
        found = (c for prefix, c in self.composers.items() if nonce.startswith(prefix))
        return next(found, self.compose)

    def now(self) -> float:
        """Return the endpoint's clock in Unix seconds."""
        return self.endpoint.clock().timestamp()

    def queued(self, store: Store, now: float) -> bool:
        """Tell whether an email asked for now would wait for the hourly limit."""
        if not self.hourly:
            return False
        return store.notice_turn(now, self.interval, self.hourly) - now > QUEUED

    async def add(self, nonce: str, kind: str, masked: str) -> bool:
        """Give a sign-up's email its turn and see that it is sent; False if it is not."""
        now = self.now()
        try:
            turn = await self.endpoint.write(
                lambda s: s.reserve_notice(nonce, kind, now, self.interval, self.hourly, HORIZON),
                WAIT,
            )
        except StoreError as exc:
            log.warning("web: %s to %s not sent: %s", kind, masked, exc)
            return False
        if turn is None:
            log.warning(
                "web: %s to %s not sent: an hour of mail waits already for [smtp] hourly_limit "
                "(%d); they may sign up again tomorrow",
                kind,
                masked,
                self.hourly,
            )
            return False
        if turn - now > QUEUED:
            minutes = (turn - now) / 60
            log.info("web: %s to %s waits %.0f min for [smtp] hourly_limit", kind, masked, minutes)
        self.send_soon()
        return True

    async def resume(self) -> None:
        """Send the emails a restart left waiting (at start, once the database is open)."""
        try:
            if await self.endpoint.read(lambda store: store.next_notice()) is None:
                return
        except StoreError as exc:
            log.warning("web: cannot look for emails waiting to be sent: %s", exc)
            return
        self.send_soon()

    def send_soon(self) -> None:
        """Send the emails whose turn has come, in the background, then wait for the next."""
        self.drained.clear()
        self.wake.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until every email is sent but those waiting for the hourly limit."""
        if self.task is not None and not self.task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop sending: the email in flight finishes, waiting ones stay for the next start."""
        self.stopping = True
        self.wake.set()
        if self.task is not None and not self.task.done():
            done, _ = await asyncio.wait({self.task}, timeout=timeout)
            if not done:
                self.task.cancel()

    async def _run(self) -> None:
        last = -float("inf")  # when the last email went (monotonic)
        try:
            while not self.stopping:
                self.wake.clear()
                now = self.now()
                try:
                    due = await self.endpoint.read(functools.partial(Store.due_notices, now=now))
                    for nonce in due:
                        if self.stopping:
                            return
                        await asyncio.sleep(max(0.0, last + self.interval - time.monotonic()))
                        await self._send(nonce)
                        last = time.monotonic()
                    if due:
                        continue
                    turn = await self.endpoint.read(lambda s: s.next_notice())
                except StoreError as exc:
                    log.warning("web: cannot read the emails to send (%s); trying again", exc)
                    turn = now + self.poll
                if self.wake.is_set():
                    continue  # more were added meanwhile
                if turn is None:
                    return
                if turn - now > QUEUED:
                    self.drained.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min(max(turn - now, 0.0), self.poll))
        finally:
            self.drained.set()

    async def _send(self, nonce: str) -> None:
        """Send one sign-up's email and record it; a failed one no longer counts."""
        try:
            email = await self.endpoint.read(lambda s: self.composer(nonce)(s, nonce))
            sent = email is not None and await self._deliver(email)
        except StoreError:
            raise  # the loop tries again later
        except Exception:  # e.g. an operator's broken template: this email only
            log.exception("web: cannot compose or send the email of a sign-up; dropped")
            sent = False
        if sent:
            now = self.endpoint.clock()
            await self.endpoint.write(lambda s: s.notice_sent(nonce, now), WAIT)
        else:
            await self.endpoint.write(lambda s: s.drop_notice(nonce), WAIT)

    async def _deliver(self, email: Email) -> bool:
        """Send one email over its own connection; log one line and return False if it fails."""
        masked = mask(email.email)
        try:
            await send_email(
                email, self.endpoint.settings, self.endpoint.clock(), self.endpoint.secret
            )
        except (SendError, OSError, ValueError) as exc:
            log.warning("web: %s to %s not sent: %s", email.kind, masked, exc)
            return False
        log.info("web: %s sent to %s", email.kind, masked)
        return True
