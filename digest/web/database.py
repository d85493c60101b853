"""The web's one way to the database: threads that each keep one Store open, and one writer.

As datasette does it: reads run on per-thread connections (a few for signed links, a few for
the public pages, so that public traffic never delays an unsubscribe), and every write runs on
one writer thread, in turn. Each connection is opened once, at start, and the schema is checked
once, by the first; they are closed when the app stops.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from ..store import Store, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
READ_WAIT = 10.0  # seconds a read waits for the database (WAL: only a rare checkpoint holds it)
Job = tuple[Callable[[Store], Any], Future[Any], float | None] | None


class Workers:
    """Threads that each own one open Store and run the work given to them, in turn."""

    def __init__(
        self, path: Path, threads: int, name: str, wait: float = READ_WAIT, migrate: bool = False
    ):
        self.path, self.threads, self.name, self.default_wait = path, threads, name, wait
        self.migrate = migrate  # the first connection of the app checks (and migrates) the schema
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.running: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads and wait until each has opened its Store (or raise its error)."""
        opened: queue.SimpleQueue[StoreError | None] = queue.SimpleQueue()
        for number in range(self.threads):
            thread = threading.Thread(
                target=self._serve, args=(opened,), name=f"{self.name}-{number}", daemon=True
            )
            thread.start()
            self.running.append(thread)
        errors = [error for error in (opened.get() for _ in self.running) if error is not None]
        if errors:
            self.stop()
            raise errors[0]

    def stop(self) -> None:
        """Let the threads finish the work given so far, close their Stores, and end."""
        threads, self.running = self.running, []  # run() takes no more work
        for _ in threads:
            self.jobs.put(None)
        for thread in threads:
            thread.join()
        while not self.jobs.empty():  # given in the meantime: refused, not left waiting
            if (job := self.jobs.get()) is not None and job[1].set_running_or_notify_cancel():
                job[1].set_exception(StoreError(f"{self.path}: the web's connections closed"))

    async def run(self, work: Callable[[Store], T], wait: float | None = None) -> T:
        """Run work(store) on one of the threads; a write waits `wait` seconds at most for the
        database, counted from now (StoreBusy after that)."""
        if not self.running:
            raise StoreError(f"{self.path}: the web's connections are closed (the app stopped)")
        future: Future[T] = Future()
        deadline = None if wait is None else time.monotonic() + wait
        self.jobs.put((work, future, deadline))
        return await asyncio.wrap_future(future)

    def _serve(self, opened: queue.SimpleQueue[StoreError | None]) -> None:
        try:
            store = Store(self.path, timeout=self.default_wait, migrate=self.migrate)
        except StoreError as exc:
            opened.put(exc)
            return
        opened.put(None)
        with store:
            while (job := self.jobs.get()) is not None:
                work, future, deadline = job
                if not future.set_running_or_notify_cancel():
                    continue  # the request went away before its turn
                if deadline is not None:  # what is left of its wait, after its turn in line
                    store.wait(max(0.0, deadline - time.monotonic()))
                try:
                    future.set_result(work(store))
                except BaseException as exc:  # handed to the request, which answers it
                    future.set_exception(exc)
                finally:
                    if deadline is not None:
                        store.wait(self.default_wait)
                    if store.db.conn.in_transaction:  # work that failed halfway
                        store.db.conn.rollback()


class StorePool:
    """The app's database: read threads for signed links and for public pages, one writer."""

    def __init__(self, path: Path, readers: int = 2, pages: int = 4):
        self.path = path
        self.readers = Workers(path, readers, "web-read")
        self.pages = Workers(path, pages, "web-pages")
        # The pages' cache asks the history's generation here: never behind a page being built.
        self.stamps = Workers(path, 1 if pages else 0, "web-stamp")
        self.writer = Workers(path, 1, "web-write", migrate=True)

    def open(self) -> None:
        """Open the writer's connection, which checks (and migrates) the schema, then the rest."""
        started: list[Workers] = []
        try:
            for workers in (self.writer, self.readers, self.pages, self.stamps):
                workers.start()
                started.append(workers)
        except StoreError:
            for workers in started:
                workers.stop()
            raise

    def close(self) -> None:
        """Finish the work given so far and close every connection."""
        for workers in (self.readers, self.pages, self.stamps, self.writer):
            workers.stop()

    async def read(self, work: Callable[[Store], T]) -> T:
        """Run work(store) on a read connection kept for signed links and the app itself."""
        return await self.readers.run(work)

    async def page(self, work: Callable[[Store], T]) -> T:
        """Run work(store) on a read connection kept for the public pages."""
        return await self.pages.run(work)

    async def stamp(self, work: Callable[[Store], T]) -> T:
        """Run a quick question of the public pages' cache (one indexed row) on its own thread."""
        return await self.stamps.run(work)

    async def write(self, work: Callable[[Store], T], wait: float) -> T:
        """Run work(store) on the one writer: reads and writes in one go, waiting `wait`
        seconds at most (from now) for another process's write lock, then StoreBusy."""
        return await self.writer.run(work, wait)
