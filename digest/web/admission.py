"""How much public work the site takes on: a bound on the work done at once, and a rate per
client (a client network, see clients.py)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

NETWORKS = 10_000  # client networks remembered at most; the longest quiet are forgotten
WINDOW = 60.0  # seconds: the rate counts a rolling minute


class Full(Exception):
    """Every slot is taken and the waiting line is full (or waited too long): answer 503."""


class Rate:
    """Allow each client network `per_minute` requests in any rolling minute (0: no limit)."""

    def __init__(
        self, per_minute: int, size: int = NETWORKS, clock: Callable[[], float] = time.monotonic
    ):
        self.per_minute, self.size, self.clock = per_minute, size, clock
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def admit(self, client: str) -> float:
        """Count a request of a network; return 0 if allowed, else the seconds until it is."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        times = self.seen.pop(client, None) or deque()
        while times and times[0] <= now - WINDOW:
            times.popleft()
        wait = 0.0 if len(times) < self.per_minute else times[0] + WINDOW - now
        if not wait:
            times.append(now)
        self.seen[client] = times
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return wait

    def waiting(self, client: str) -> float:
        """Return 0 if a request of a network would be allowed now, else the seconds until it
        is; count nothing (a caller that counts only failures: see admit)."""
        if self.per_minute <= 0:
            return 0.0
        times = self.seen.get(client) or deque()
        recent = [t for t in times if t > self.clock() - WINDOW]
        return 0.0 if len(recent) < self.per_minute else recent[0] + WINDOW - self.clock()


class Gate:
    """Let `slots` requests work at once; `queue` more wait for a slot (`wait` seconds at
    most); past that, Full at once: a flood is refused cheaply instead of piling up."""

    def __init__(self, slots: int, queue: int, wait: float = 5.0):
        self.slots, self.queue, self.wait = slots, queue, wait
        self.semaphore = asyncio.Semaphore(slots)
        self.inside = 0  # working or waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; raise Full when there is none to wait for."""
        if self.inside >= self.slots + self.queue:
            raise Full(f"{self.slots} at work and {self.queue} waiting")
        self.inside += 1
        try:
            try:
                async with asyncio.timeout(self.wait):
                    await self.semaphore.acquire()
            except TimeoutError:
                raise Full(f"no slot free within {self.wait:g} s") from None
            try:
                yield
            finally:
                self.semaphore.release()
        finally:
            self.inside -= 1
