"""Who gets mail this cycle: subscribers.csv, each person's own choices, confirmed sign-ups."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from .addresses import address_key
from .config import Settings
from .store import Person, Store
from .subscribers import BadRow, Subscriber, read_subscribers

if TYPE_CHECKING:
    from .pipeline import CycleReport

log = logging.getLogger(__name__)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


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


def readers(
    settings: Settings, store: Store, report: CycleReport | None = None
) -> Iterator[Reader]:
    """Yield everyone on the list: subscribers.csv's rows (with their own choices), then the
    confirmed web sign-ups; a thousand rows at a time, so memory stays flat."""
    listed: set[str] = set()
    batch: list[Subscriber] = []
    for sub in subscribers_of(settings, report):
        batch.append(sub)
        if len(batch) >= 1000:
            yield from _merged(settings, store, batch, listed)
            batch = []
    yield from _merged(settings, store, batch, listed)
    for person in store.web_people():
        if person.key not in listed:
            yield _reader(settings, person.email, person.name, (), person)


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
        person.last_sent_on, chosen=True,
    )  # fmt: skip


def subscribers_of(settings: Settings, report: CycleReport | None = None) -> Iterator[Subscriber]:
    """Yield the valid rows of subscribers.csv, logging (and noting) each bad row."""
    for entry in read_subscribers(settings.subscribers, settings.keywords):
        if isinstance(entry, BadRow):
            log.warning("skipping %s", entry)
            if report is not None:
                report.bad_rows.append(str(entry))
            continue
        yield entry
