"""The long-running service: the daily cycle on schedule, the web endpoint, and systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import schedule

from .config import Settings
from .lock import CycleRunning, LockError
from .models import CycleReport
from .pipeline import run_once
from .progress import LogProgress
from .signing import SecretChanged
from .store import Store, StoreError
from .web import make_app, start_site

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RETRY_LOCKED = timedelta(minutes=5)
# A cycle that shows no progress this long is wedged: the watchdog is no longer fed, so systemd
# restarts the service. Every wait of a healthy cycle is far shorter (a request's deadline, a
# Retry-After of at most 5 minutes, an SMTP timeout), or beats while it waits (rate limits).
STALL_AFTER = 15 * 60.0


class Unread:
    """The last cycle, not read yet (Daemon.status reads it itself)."""


UNREAD = Unread()


class Heartbeat(LogProgress):
    """Log a cycle's progress, and remember when it last moved (for the watchdog)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock=clock)
        self.moved = clock()

    def start(self, phase: str, total: int) -> None:
        """Remember the phase, and that the cycle moved."""
        self.beat()
        super().start(phase, total)

    def advance(self, steps: int = 1) -> None:
        """Count steps, and that the cycle moved."""
        self.beat()
        super().advance(steps)

    def beat(self) -> None:
        """Note that the cycle moved."""
        self.moved = self.clock()

    def idle(self) -> float:
        """Return the seconds since the cycle last moved."""
        return self.clock() - self.moved


def notify(message: str) -> bool:
    """Send a state line to systemd (sd_notify) when NOTIFY_SOCKET is set."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", path, exc)
        return False
    return True


def previous_slot(now: datetime, settings: Settings) -> datetime:
    """Return the latest send_at moment, in the configured time zone, at or before now."""
    local = now.astimezone(settings.timezone)
    slot = datetime.combine(local.date(), settings.send_at, tzinfo=settings.timezone)
    if slot > local:
        day = local.date() - timedelta(days=1)
        slot = datetime.combine(day, settings.send_at, tzinfo=settings.timezone)
    return slot


class Clockwork:
    """Decide when a cycle is due: daily at send_at, and once to catch up a missed slot."""

    def __init__(self, settings: Settings, last_success: Callable[[], datetime | None]):
        self.settings = settings
        self.last_success = last_success
        self.scheduler = schedule.Scheduler()
        at = settings.send_at.strftime("%H:%M")
        # The job only rings; it never raises, so `schedule` always reschedules it.
        self.job = self.scheduler.every().day.at(at, settings.timezone.key).do(self._ring)
        self.rung = True  # look once at start-up: a slot may have been missed while down
        self.retry_at: datetime | None = None
        self._wall, self._mono = time.time(), time.monotonic()

    def _ring(self) -> None:
        self.rung = True

    def _woke(self) -> bool:
        """Tell whether the wall clock jumped ahead of the monotonic one (suspend, resume)."""
        wall, mono = time.time(), time.monotonic()
        jumped = (wall - self._wall) - (mono - self._mono) > 60
        self._wall, self._mono = wall, mono
        return jumped

    def due(self, now: datetime) -> bool:
        """Tell whether a cycle should start now; call this once per tick."""
        self.scheduler.run_pending()
        woke = self._woke()
        retry = self.retry_at is not None and now >= self.retry_at
        if not (self.rung or woke or retry):
            return False
        self.rung, self.retry_at = False, None
        try:
            last = self.last_success()
        except Exception:
            self.retry_at = now + timedelta(minutes=1)  # look again soon, without a log flood
            raise
        return last is None or last < previous_slot(now, self.settings)

    def next_run(self) -> datetime | None:
        """Return the next scheduled cycle as an aware datetime."""
        return self.job.next_run.astimezone() if self.job.next_run else None


class Daemon:
    """Run cycles on schedule in a worker thread while the event loop serves the web."""

    def __init__(
        self,
        settings: Settings,
        cycle: Callable[..., CycleReport] = run_once,
        clock: Clock = lambda: datetime.now(UTC),
        stall_after: float = STALL_AFTER,
    ):
        self.settings = settings
        self.cycle = cycle
        self.clock = clock
        self.stall_after = stall_after
        self.heartbeat = Heartbeat()
        self.stop = threading.Event()
        self.clockwork = Clockwork(settings, self._last_success)
        self.task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def _last_success(self) -> datetime | None:
        with Store(self.settings.database) as store:
            return store.last_success()

    @property
    def running(self) -> bool:
        """Tell whether a cycle is under way."""
        return self.task is not None and not self.task.done()

    def stalled(self) -> bool:
        """Tell whether the running cycle has shown no progress for stall_after seconds."""
        return self.running and self.heartbeat.idle() > self.stall_after

    def tick(self) -> bool:
        """Do the due work: start a cycle if one is due and none runs; return whether it did."""
        if self.stop.is_set() or self.running or not self.clockwork.due(self.clock()):
            return False
        self.task = asyncio.get_running_loop().create_task(self._run_cycle())
        return True

    async def _run_cycle(self) -> None:
        log.info("cycle: starting")
        self.heartbeat.beat()
        try:
            await asyncio.to_thread(
                self.cycle, self.settings, stop=self.stop, progress=self.heartbeat
            )
            self.last_error = None
        except CycleRunning as exc:
            log.warning("cycle: %s; trying again in 5 minutes", exc)
            self.clockwork.retry_at = self.clock() + RETRY_LOCKED
        except (StoreError, LockError, SecretChanged) as exc:  # one line, no traceback to read
            self.last_error = str(exc)
            log.error("cycle: failed: %s; the daemon goes on and tries at the next slot", exc)
        except Exception as exc:  # a failed cycle must never stop the daemon
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("cycle: failed; the daemon goes on and tries at the next slot")
        notify(f"STATUS={self.status_line()}")

    def status(self, last: dict[str, Any] | Unread | None = UNREAD) -> dict[str, Any]:
        """Return the health status served at /healthz, from the last cycle the web's own
        connection read (or read here, when it is not given)."""
        if isinstance(last, Unread):
            with Store(self.settings.database) as store:
                last = store.last_cycle()
        next_run = self.clockwork.next_run()
        healthy = self.last_error is None and (last is None or last["status"] != "error")
        return {
            "status": "stalled" if self.stalled() else "ok" if healthy else "degraded",
            "running": self.running,
            "last_cycle": last,
            "next_cycle": next_run.isoformat() if next_run else None,
            "error": self.last_error,
        }

    def status_line(self) -> str:
        """Return the one-line STATUS= text for systemd."""
        next_run = self.clockwork.next_run()
        when = next_run.astimezone(self.settings.timezone) if next_run else None
        state = "cycle running" if self.running else "idle"
        return f"{state}; next cycle {when:%Y-%m-%d %H:%M %Z}" if when else state

    async def wait_for_cycle(self) -> None:
        """Let a running cycle finish its in-flight message and record its state."""
        if self.task is not None:
            await self.task


async def serve(
    settings: Settings,
    daemon: Daemon | None = None,
    tick: float = 1.0,
    stopping: asyncio.Event | None = None,
) -> None:
    """Serve the web endpoint (and run the daemon's cycles) until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stopping = stopping or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    status = daemon.status if daemon else None
    runner = await start_site(make_app(settings, status), settings.web_host, settings.web_port)
    watchdog = float(os.environ.get("WATCHDOG_USEC", 0)) / 2e6
    interval = min(tick, watchdog) if watchdog else tick
    notify("READY=1\nSTATUS=" + (daemon.status_line() if daemon else "serving"))
    last_ping, stall_logged = 0.0, False
    try:
        while not stopping.is_set():
            try:
                if daemon is not None and daemon.tick():
                    notify(f"STATUS={daemon.status_line()}")
            except Exception:  # e.g. the database unreadable for a moment: try next tick
                log.exception("daemon: cannot check the schedule; trying again")
            stalled = daemon is not None and daemon.stalled()
            if daemon is not None and stalled and not stall_logged:
                log.error(
                    "cycle: no progress for %.0f s; no longer feeding the watchdog, so that "
                    "systemd restarts digest (the outbox resumes after the restart)",
                    daemon.stall_after,
                )
            stall_logged = stalled
            if watchdog and not stalled and time.monotonic() - last_ping >= watchdog:
                notify("WATCHDOG=1")
                last_ping = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
        log.info("stopping: no new work; letting the message in flight finish")
        notify("STOPPING=1")
        if daemon is not None:
            daemon.stop.set()
            waiting = asyncio.ensure_future(daemon.wait_for_cycle())
            while not waiting.done():
                if watchdog:
                    notify("WATCHDOG=1")
                await asyncio.wait([waiting], timeout=interval)
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")
