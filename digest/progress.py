"""Progress of a cycle's phases: bars on a terminal, periodic log lines elsewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Progress:
    """Receive the progress of a phase; this base class ignores it."""

    def start(self, phase: str, total: int) -> None:
        """A phase begins with this many steps."""

    def advance(self, steps: int = 1) -> None:
        """Some steps are done."""

    def finish(self) -> None:
        """The phase is over."""

    def beat(self) -> None:
        """The phase is alive: a request was answered, a wait went by."""


class LogProgress(Progress):
    """Log 'phase: n/N' every `interval` seconds (for the daemon and systemd)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.phase, self.total, self.done, self.last = "", 0, 0, 0.0
        self.logged = -1

    def start(self, phase: str, total: int) -> None:
        """Remember the phase and its size."""
        self.phase, self.total, self.done, self.last = phase, total, 0, self.clock()
        self.logged = -1

    def advance(self, steps: int = 1) -> None:
        """Count steps; log when the interval has passed."""
        self.done += steps
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._log()

    def finish(self) -> None:
        """Log the final count of a long phase (short ones are in the phase's own line)."""
        if self.logged >= 0 and self.logged != self.done:
            self._log()

    def _log(self) -> None:
        self.logged = self.done
        log.info("%s: %d/%d", self.phase, self.done, self.total)
