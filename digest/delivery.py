"""The send phase: stream the outbox through a pool of connections, under rate limits."""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import mail
from .bodies import Bodies
from .config import Settings
from .dkim import DkimError, Signer
from .links import Links
from .mail import Composer, Letter
from .models import DeliveryReport
from .progress import Progress
from .store import Message, Store
from .transport import Failure, SendError, Transport
from .transport import transport as open_transport

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
RELAY_REFUSALS = 10  # different addresses refused in a row: the relay's doing, not theirs


class RateLimiter:
    """Space sends to `rate` per second and at most `hourly` per rolling hour, pool-wide.

    `others` returns the turns another process took since it was last called (the web's
    confirmations, in this clock's time): they count in the hour, and are kept apart too.
    """

    def __init__(
        self,
        rate: float,
        hourly: int,
        recent: list[float],
        clock: Callable[[], float] | None = None,
        others: Callable[[], list[float]] | None = None,
    ):
        self.interval = 1.0 / rate if rate else 0.0
        self.hourly = hourly
        self.clock = clock or asyncio.get_running_loop().time
        self.others = others
        self.next_slot = 0.0
        self.window: list[float] = sorted(recent)
        self.foreign: list[float] = []  # the other process's turns, to keep apart from

    def reserve(self) -> float:
        """Reserve the next sending slot and return how long to wait for it."""
        now = self.clock()
        for moment in self.others() if self.others else ():
            bisect.insort(self.foreign, moment)
            if self.hourly:
                bisect.insort(self.window, moment)
        slot = max(now, self.next_slot)
        if self.hourly:
            del self.window[: bisect.bisect_right(self.window, slot - 3600)]
            if len(self.window) >= self.hourly:
                slot = max(slot, self.window[-self.hourly] + 3600)
        if self.interval and self.foreign:
            del self.foreign[: bisect.bisect_right(self.foreign, now - self.interval)]
            for moment in self.foreign:
                if moment - self.interval < slot < moment + self.interval:
                    slot = moment + self.interval
        if self.hourly:
            bisect.insort(self.window, slot)
        self.next_slot = slot + self.interval
        return slot - now


class Delivery:
    """Send every pending outbox message once, through a pool of reused connections."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        secret: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ):
        self.settings = settings
        self.store = store
        self.secret = secret
        self.links = Links(settings.base_url, secret)
        self.clock = clock
        self.stop = stop or threading.Event()
        self.progress = progress or Progress()
        self.report = DeliveryReport()
        smtp = settings.smtp
        self.pool = smtp.connections if smtp else 1
        self.max_attempts = smtp.max_attempts if smtp else 1
        self.retry_base = smtp.retry_seconds if smtp else 1.0
        self.bodies = Bodies(settings, store)  # personal editions: rendered when sent
        self._composers: collections.OrderedDict[int, Composer] = collections.OrderedDict()
        self._tries: collections.Counter[int] = collections.Counter()
        self._in_play = 0  # queued, being sent, or waiting to be retried
        self._settled = asyncio.Event()
        self._transient_run = 0  # transient failures in a row, pool-wide
        self._refusals: list[tuple[Message, SendError]] = []  # since the last delivered one
        self._relay_refused = False
        self.retry_budget = 0
        self.limiter = RateLimiter(0, 0, [], clock=lambda: 0.0)
        self.signer: Signer | None = None  # DKIM, its key loaded once a cycle by run()

    def _notices(self, loop_now: float, wall_now: datetime) -> Callable[[], list[float]]:
        """Return a function giving the web's email turns taken since its last call (in the
        event loop's time), so that they count in this cycle's limits too."""
        seen, epoch = 0, wall_now.timestamp()

        def taken() -> list[float]:
            nonlocal seen
            turns = self.store.notices_after(seen)
            if turns:
                seen = turns[-1][0]
            return [loop_now - (epoch - at) for _, at in turns if at > epoch - 3600]

        return taken

    def _transports(self) -> list[Transport]:
        return [open_transport(self.settings) for _ in range(self.pool)]  # a Maildir: pool is 1

    def composer(self, edition_id: int) -> Composer:
        """Return the composer of an edition (the 64 last used are kept: editions come in
        runs, shared ones recur; a personal one is made from its order here, once)."""
        if edition_id in self._composers:
            self._composers.move_to_end(edition_id)
        else:
            if len(self._composers) >= 64:
                self._composers.popitem(last=False)
            edition = self.bodies.edition(edition_id)
            self._composers[edition_id] = Composer(
                edition, self.settings.sender, self.settings.name
            )
        return self._composers[edition_id]

    def message(self, item: Message, address: str | None = None) -> bytes:
        """Compose the personalised message of an outbox entry (To: address, else as written)."""
        composer = self.composer(item.edition_id)
        version = self.store.link_version(item.email)
        personal = "mine_url" in composer.edition.placeholders  # it has own-topic sections
        return composer.compose(
            email=address or item.email,
            name=item.name,
            message_id=item.message_id,
            unsubscribe_url=self.links.unsubscribe(item.email),
            manage_url=self.links.manage(item.email, version),
            date=self.clock(),
            page_unsubscribe_url=self.links.unsubscribe_page(item.email, version),
            vote_token=self.links.vote_tokens(item.email, version),
            mine_url=self.links.mine(item.email, version) if personal else "",
        )

    def envelope_sender(self, item: Message) -> str:
        """Return the envelope sender: [smtp] return_path ({token}: VERP), else From's address."""
        return mail.envelope_sender(self.settings, self.secret, item.email)

    def letter(self, item: Message) -> Letter:
        """Compose an entry's message as written and, for a non-ASCII address, in ASCII too."""
        return mail.letter(item.email, lambda to: self.message(item, to), self.signer)

    def _abort(self, reason: str) -> None:
        if self.report.aborted is None:
            self.report.aborted = reason
            log.error("send: stopping this cycle's sending: %s; unsent mail stays queued", reason)
        self._settled.set()  # wake run(): it stops feeding and lets in-flight messages finish

    async def _watch_stop(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.1)
        self._abort("asked to stop")

    async def run(self) -> DeliveryReport:
        """Send the whole outbox and return the counts."""
        total = self.store.count_pending()
        self.progress.start("send", total)
        self.retry_budget = max(100, total)
        hour_ago = self.clock() - timedelta(hours=1)
        loop_now, wall_now = asyncio.get_running_loop().time(), self.clock()
        recent = [
            loop_now - (wall_now - t).total_seconds() for t in self.store.sent_since(hour_ago)
        ]
        smtp = self.settings.smtp
        rate, hourly = (smtp.rate_limit, smtp.hourly_limit) if smtp else (0, 0)
        others = self._notices(loop_now, wall_now) if rate or hourly else None
        self.limiter = RateLimiter(rate, hourly, recent, others=others)
        try:
            self.signer = Signer.of(smtp)
            transports = self._transports()
        except (SendError, DkimError) as exc:  # no Maildir, or no DKIM key: nothing can be sent
            self._abort(str(exc))
            self.report.pending = self.store.count_pending()
            return self.report
        queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=2 * len(transports))
        watcher = asyncio.create_task(self._watch_stop())
        workers = [asyncio.create_task(self._worker(t, queue)) for t in transports]
        try:
            for item in self.store.pending():
                if self.report.aborted:
                    break
                self._in_play += 1
                self._settled.clear()
                await queue.put(item)
            while self._in_play and not self.report.aborted:
                await self._settled.wait()
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in (*workers, watcher):
                task.cancel()
            for transport in transports:
                await transport.close()
            self.progress.finish()
            self.bodies.close()
        addresses = {i.email.casefold() for i, _ in self._refusals}
        if self._relay_refused or (self.report.sent == 0 and len(addresses) > 1):
            self._relay_refuses()  # (nothing delivered, everyone refused: a small list's case)
        self._settle()
        self.report.pending = self.store.count_pending()
        if pruned := self.store.prune_recipes():  # their messages are out: no longer needed
            log.info("send: %d personal editions' orders dropped, all their mail sent", pruned)
        return self.report

    def _done(self) -> None:
        self._in_play -= 1
        self.progress.advance()
        if self._in_play == 0:
            self._settled.set()

    async def _worker(self, transport: Transport, queue: asyncio.Queue[Message | None]) -> None:
        while (item := await queue.get()) is not None:
            if self.report.aborted:
                self._done()  # left in the outbox for the next cycle
                continue
            await self._deliver(transport, item, queue)

    async def _deliver(
        self, transport: Transport, item: Message, queue: asyncio.Queue[Message | None]
    ) -> None:
        if self.store.is_suppressed(item.email):
            self.store.mark_skipped(item.id, "unsubscribed")
            self.report.skipped += 1
            return self._done()
        try:
            letter = self.letter(item)
        except (ValueError, TypeError, UnicodeError) as exc:  # a header that cannot be written
            self.store.mark_failed(item.id, f"cannot compose the message: {exc}", True)
            self.report.failed += 1
            log.error("%s: cannot compose the message (%s)", item.email, exc)
            return self._done()
        wait = self.limiter.reserve()
        while wait > 0:  # an hourly limit may wait long: say the cycle is alive meanwhile
            await asyncio.sleep(min(wait, 60.0))
            wait -= 60.0
            self.progress.beat()
        try:
            await transport.send(letter, self.envelope_sender(item))
        except SendError as exc:
            return self._failed(item, exc, queue)
        self._transient_run = 0
        self.store.mark_sent(item.id, item.email, self.clock())
        self.report.sent += 1
        self._settle()  # the relay delivers: the refusals before this one are the addresses'
        self._done()

    def _failed(self, item: Message, exc: SendError, queue: asyncio.Queue[Message | None]) -> None:
        if exc.failure is Failure.FATAL:
            self.store.mark_failed(item.id, str(exc), permanent=False)
            self._abort(f"the server refuses every message ({exc})")
            return self._done()
        if exc.failure in (Failure.BOUNCE, Failure.REFUSED):
            # Judged once the relay is seen to deliver: refusing many addresses in a row is
            # the relay's doing (a missing login, a sender it will not relay for), not theirs.
            self._refusals.append((item, exc))
            if len({i.email.casefold() for i, _ in self._refusals}) >= RELAY_REFUSALS:
                self._relay_refuses()
            return self._done()
        self.store.mark_failed(item.id, str(exc), permanent=False)
        self._transient_run += 1
        self._tries[item.id] += 1
        if self._transient_run >= 3 * self.pool + 2:
            self._abort(f"{self._transient_run} failures in a row, the last: {exc}")
        if (
            self.report.aborted
            or self._tries[item.id] >= self.max_attempts
            or self.retry_budget <= 0
        ):
            log.warning("%s: not delivered yet (%s); stays queued", item.email, exc)
            return self._done()
        self.retry_budget -= 1
        self.report.retried += 1
        delay = min(MAX_BACKOFF, self.retry_base * 2 ** (self._tries[item.id] - 1))
        delay *= 0.5 + random.random()  # jitter spreads retries apart
        asyncio.get_running_loop().call_later(delay, self._requeue, item, queue)

    def _settle(self) -> None:
        """Record the refusals since the last delivered message as the addresses' own."""
        for item, exc in self._refusals:
            self.store.mark_failed(item.id, str(exc), permanent=True)
            self.report.failed += 1
            log.warning("%s: refused (%s)", item.email, exc)
            if exc.failure is Failure.BOUNCE and self.store.record_bounce(
                item.email, str(exc), self.clock()
            ):
                self.report.bounced += 1
                log.warning("%s: suppressed after repeated permanent failures", item.email)
        self._refusals.clear()

    def _relay_refuses(self) -> None:
        """Leave refused messages queued and stop: the relay refuses whoever it is sent to."""
        refusals, self._refusals = self._refusals, []
        self._relay_refused = True
        if not refusals:
            return
        for item, exc in refusals:
            self.store.mark_failed(item.id, str(exc), permanent=False)
        addresses = len({i.email.casefold() for i, _ in refusals})
        self._abort(
            f"the relay refused {addresses} different addresses in a row, the last with "
            f"'{refusals[-1][1]}': that is the relay refusing this sender, not the addresses "
            "(check [smtp] sender, the login, and the relay's rules); nobody was counted as "
            "a bounce"
        )

    def _requeue(self, item: Message, queue: asyncio.Queue[Message | None]) -> None:
        if self.report.aborted:
            return self._done()
        asyncio.get_running_loop().create_task(queue.put(item))
