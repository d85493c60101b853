"""The list as its operator sees it: everyone, with source, topics, schedule, pause, status."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from . import subscribers
from .config import Settings
from .readers import Reader, roll
from .store import Store
from .subscribers import BadRow, neutralize

COLUMNS = (*subscribers.COLUMNS, *subscribers.EXPORT_COLUMNS)  # `digest check` reads them back


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the roster: a reader (None for an address only on the suppression list)."""

    email: str
    reader: Reader | None
    status: str
    own_topics: int = 0  # how many topics of their own they wrote on their page


def roster(settings: Settings, store: Store) -> Iterator[Entry | BadRow]:
    """Yield everyone: the list's readers, then addresses suppressed but no longer listed,
    then subscribers.csv's bad rows (the file read once)."""
    suppressed = store.suppressions()
    own = store.own_topic_counts()
    listed = set()
    bad: list[BadRow] = []
    for reader in roll(settings, store):
        if isinstance(reader, BadRow):
            bad.append(reader)
            continue
        listed.add(reader.key)
        yield Entry(
            reader.email, reader, _status(suppressed.get(reader.key)), own.get(reader.key, 0)
        )
    for email, state in suppressed.items():
        if email not in listed:
            yield Entry(email, None, _status(state))
    yield from bad


def _status(state: tuple[str, datetime] | None) -> str:
    return f"{state[0]} since {state[1]:%Y-%m-%d %H:%M}" if state else "active"


def line(settings: Settings, entry: Entry | BadRow) -> str:
    """Return an entry as a line of `digest subscribers`."""
    if isinstance(entry, BadRow):
        return f"invalid row    {entry}"
    if entry.reader is None and entry.status.startswith("deleted"):
        return f"{entry.status:<30} {entry.email}  (data deleted: a row of theirs is ignored)"
    if entry.reader is None:
        return f"{entry.status:<30} {entry.email}  (not in the subscribers file)"
    r = entry.reader
    names = {k.key: k.name for k in settings.keywords}
    details = [", ".join(names[k] for k in r.topics) or "no topic", r.schedule]
    if entry.own_topics:
        details.insert(1, f"{entry.own_topics} own topic{'s' if entry.own_topics != 1 else ''}")
    if r.paused_until:
        details.append(f"paused until {r.paused_until}")
    if r.abstracts:
        details.append(f"abstracts: {r.abstracts}")
    return f"{entry.status:<30} {r.email}  [{r.source}] ({'; '.join(details)})"


def export(settings: Settings, store: Store, out: IO[str]) -> int:
    """Write everyone as CSV (subscribers.csv's columns, then the rest); return how many.

    Every cell is quoted, and one that a spreadsheet would run as a formula (=, +, -, @, tab,
    CR first) starts with "'" (as OWASP advises); `digest check` reads the file back as it was.
    """
    names = {k.key: k.name for k in settings.keywords}
    out.write(",".join(COLUMNS) + "\n")
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    count = 0
    for entry in roster(settings, store):
        if isinstance(entry, BadRow):
            continue
        r = entry.reader
        cells = (
            [entry.email, r.name, ";".join(names[k] for k in r.topics), r.source, r.schedule,
             str(r.paused_until or ""), r.abstracts or "", entry.status]
            if r
            else [entry.email, "", "", "", "", "", "", entry.status]
        )  # fmt: skip
        writer.writerow([neutralize(cell) for cell in cells])
        count += 1
    return count
