"""Who is on the list, and with what: subscribers.csv, each person's own choices, sign-ups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from . import presentation
from .addresses import address_key
from .config import Settings
from .store import Person, Store
from .subscribers import BadRow, Subscriber, SubscribersError, read_subscribers

log = logging.getLogger(__name__)

WEEKDAYS = presentation.WEEKDAYS  # kept here too: readers' schedules name them


@dataclass(frozen=True, slots=True)
class Reader:
    """A person this cycle considers: their address, topics and schedule."""

    email: str
    name: str
    topics: tuple[str, ...]  # keyword keys, in settings order
    source: str = "csv"  # "csv" or "web"
    frequency: str = "daily"  # or "weekly"
    weekday: int | None = None
    paused_until: date | None = None
    abstracts: str | None = None  # None: the list's setting
    last_cycle: int | None = None  # None: only this cycle's news is theirs
    last_sent_on: date | None = None
    chosen: bool = False  # they have a row of their own choices
    own: tuple[str, ...] = ()  # their own topic lines, as they wrote them (topics.py)

    @property
    def key(self) -> str:
        """Return the key every spelling of the address shares."""
        return address_key(self.email)

    @property
    def schedule(self) -> str:
        """Return 'daily' or 'weekly on Monday'."""
        if self.frequency == "weekly" and self.weekday is not None:
            return f"weekly on {WEEKDAYS[self.weekday]}"
        return "daily"


@dataclass(frozen=True, slots=True)
class Due:
    """What a reader gets this cycle."""

    mail: bool  # a digest, if their window has news
    since: int | None = None  # their news is of the cycles after this one (None: this one's)
    resumed: date | None = None  # their pause ended that day: the email says so
    covered: bool = False  # their window moves to this cycle even without mail (paused)


def due(reader: Reader, today: date) -> Due:
    """Decide what a reader gets today: a digest of which cycles, or nothing yet."""
    if reader.paused_until is not None and today < reader.paused_until:
        return Due(mail=False, covered=reader.chosen)  # no backlog when the pause ends
    if reader.frequency == "weekly" and (
        today.weekday() != reader.weekday or reader.last_sent_on == today
    ):
        return Due(mail=False)  # the news waits for their day
    return Due(mail=True, since=reader.last_cycle, resumed=reader.paused_until)


def roll(settings: Settings, store: Store, *, quiet: bool = False) -> Iterator[Reader | BadRow]:
    """Yield everyone on the list: subscribers.csv's rows (with their own choices) and its bad
    rows (logged, unless quiet: counted again), then the confirmed web sign-ups; a thousand rows
    at a time, so memory stays flat. subscribers.csv is read once, as it goes. The rows of people
    who deleted their data are left out (`digest check` asks the operator to remove them)."""
    listed: set[str] = set()
    batch: list[Subscriber] = []
    deleted = store.deleted()
    for entry in read_subscribers(settings.subscribers, settings.keywords):
        if isinstance(entry, BadRow):
            if not quiet:
                log.warning("skipping %s", entry)
            yield entry
            continue
        if deleted and address_key(entry.email) in deleted:
            continue
        batch.append(entry)
        if len(batch) >= 1000:
            yield from _merged(settings, store, batch, listed)
            batch = []
    yield from _merged(settings, store, batch, listed)
    for person in store.web_people():
        if person.key not in listed:
            yield _reader(settings, person.email, person.name, (), person)


def readers(settings: Settings, store: Store) -> Iterator[Reader]:
    """Yield everyone on the list, as roll() does, leaving out subscribers.csv's bad rows."""
    for entry in roll(settings, store):
        if isinstance(entry, Reader):
            yield entry


def reader(settings: Settings, store: Store, email: str) -> Reader | None:
    """Return one person as the next cycle sees them: their subscribers.csv row (with their
    own choices) or their confirmed sign-up; None if they are on neither (or deleted their data)."""
    person = store.person(email)
    row = _rows(settings).get(address_key(email))
    if row is not None and (gone := store.suppression(email)) and gone[0] == "deleted":
        row = None  # their data is deleted: the row waits for the operator to remove it
    if row is not None:
        return _reader(settings, row.email, row.name, row.keywords, person)
    if person is not None and person.source == "web" and person.confirmed_at is not None:
        return _reader(settings, person.email, person.name, (), person)
    return None


def has_row(settings: Settings, email: str) -> bool:
    """Tell whether subscribers.csv has a valid row for an address."""
    return address_key(email) in _rows(settings)


def is_subscribed(settings: Settings, store: Store, email: str) -> bool:
    """Tell whether an address gets the digest: on the list (reader()) and not suppressed."""
    return not store.is_suppressed(email) and reader(settings, store, email) is not None


def _merged(
    settings: Settings, store: Store, batch: list[Subscriber], listed: set[str]
) -> Iterator[Reader]:
    keys = [address_key(sub.email) for sub in batch]
    people = store.people(keys)
    for sub, key in zip(batch, keys, strict=True):
        listed.add(key)
        yield _reader(settings, sub.email, sub.name, sub.keywords, people.get(key))


def _reader(
    settings: Settings, email: str, name: str, topics: tuple[str, ...], person: Person | None
) -> Reader:
    """Return a reader: their subscribers.csv row, unless their own choices say otherwise."""
    if person is None:
        return Reader(email, name, topics)
    if person.topics is not None:
        wanted = set(person.topics)
        topics = tuple(k.key for k in settings.keywords if k.key in wanted)
    return Reader(
        email, name or person.name, topics, person.source, person.frequency or "daily",
        person.weekday, person.paused_until, person.abstracts, person.last_cycle,
        person.last_sent_on, chosen=True, own=own_topics(settings, person),
    )  # fmt: skip


def own_topics(settings: Settings, person: Person | None) -> tuple[str, ...]:
    """Return a person's own topic lines, none while [web] personal_topics is off."""
    if person is None or not settings.web_personal_topics:
        return ()
    return person.own_topics


_cache: dict[object, dict[str, Subscriber]] = {}
_cache_lock = threading.Lock()
_SETTLED = 2.0  # seconds: a file changed more recently may change again within its mtime's tick


def _rows(settings: Settings) -> dict[str, Subscriber]:
    """Return subscribers.csv's valid rows by address key, parsed again only when the file
    changes (its inode, mtime or size): one person's lookup must not read the whole file each
    time. An unusable file counts as empty (the cycle reports it)."""
    path = settings.subscribers
    try:
        stat = path.stat()
    except OSError:
        return {}
    keys = tuple(k.key for k in settings.keywords)
    stamp = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size, keys)
    with _cache_lock:
        if (rows := _cache.get(stamp)) is not None:
            return rows
        try:
            entries = read_subscribers(path, settings.keywords)
            rows = {address_key(e.email): e for e in entries if isinstance(e, Subscriber)}
        except SubscribersError:
            rows = {}
        _cache.clear()  # one file's rows, the newest, are all there is to keep
        if time.time() - stat.st_mtime_ns / 1e9 > _SETTLED:  # else the stamp may not see a change
            _cache[stamp] = rows
    return rows
