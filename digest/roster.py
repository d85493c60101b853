"""The list as its operator sees it: everyone, with source, topics, schedule, pause, status."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from . import subscribers
from .config import Settings
from .readers import WEEKDAYS, Reader, roll
from .store import Store
from .subscribers import BadRow, neutralize
from .terminal import COLUMNS as WIDTH
from .terminal import cut, fit_widths, pad, row, width, wrapped

COLUMNS = (*subscribers.COLUMNS, *subscribers.EXPORT_COLUMNS)  # `digest check` reads them back
HEADER = ("EMAIL", "STATUS", "SINCE", "SRC", "SCHEDULE", "TOPICS")
SHRINK = ((5, 6), (0, 16), (1, 7), (2, 10))  # what gives way first: topics, then the address
STATES = ("active", "paused", "unsubscribed", "bounced", "complaint", "deleted")


@dataclass(frozen=True, slots=True)
class Entry:
    """One person of the roster: a reader (None for an address only on the suppression list),
    and why and since when they get no mail (None: they do)."""

    email: str
    reader: Reader | None
    suppressed: tuple[str, datetime] | None = None
    own_topics: int = 0  # how many topics of their own they wrote on their page

    @property
    def status(self) -> str:
        """Return 'active', or the suppression with its moment in UTC (as the export has it)."""
        reason = self.suppressed
        return f"{reason[0]} since {reason[1]:%Y-%m-%d %H:%M}" if reason else "active"

    def state(self, today: date) -> str:
        """Return one word: active, paused, or why they get no mail (unsubscribed, …)."""
        if self.suppressed:
            return self.suppressed[0]
        paused = self.reader.paused_until if self.reader else None
        return "paused" if paused is not None and today < paused else "active"


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
        yield Entry(reader.email, reader, suppressed.get(reader.key), own.get(reader.key, 0))
    for email, state in suppressed.items():
        if email not in listed:
            yield Entry(email, None, state)
    yield from bad


def topic_numbers(settings: Settings, topics: Sequence[str]) -> str:
    """Return a reader's topics by their number in the settings: 'all', 'none', '1-3,5'."""
    numbers = [n for n, k in enumerate(settings.keywords, 1) if k.key in set(topics)]
    if not numbers:
        return "none"
    if len(numbers) == len(settings.keywords) > 1:
        return "all"
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def _cells(settings: Settings, entry: Entry, today: date) -> list[str]:
    since = ""
    if entry.suppressed:
        since = f"{entry.suppressed[1].astimezone(settings.timezone):%Y-%m-%d %H:%M}"
    r = entry.reader
    if r is None:  # only on the suppression list (their CSV row is gone, or ignored: deleted)
        return [entry.email, entry.state(today), since, "-", "not listed", "-"]
    if not since and entry.state(today) == "paused":
        since = f"until {r.paused_until}"
    schedule = "daily" if r.schedule == "daily" else f"weekly {WEEKDAYS[r.weekday or 0][:3]}"
    topics = topic_numbers(settings, r.topics)
    if entry.own_topics:
        topics += f" +{entry.own_topics} own"
    return [r.email, entry.state(today), since, r.source, schedule, topics]


def table(settings: Settings, entries: Sequence[Entry | BadRow], today: date) -> list[str]:
    """Return `digest subscribers`: a header, one aligned line per person, invalid rows,
    totals and the topics' numbers, every line at most 80 columns."""
    rows = [_cells(settings, e, today) for e in entries if isinstance(e, Entry)]
    bad = [e for e in entries if isinstance(e, BadRow)]
    natural = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(HEADER)]
    if bad:  # their file and line stand in the address's column, "invalid" in the status's
        natural[0] = max([natural[0]] + [width(f"{b.path.name}:{b.line}") for b in bad])
        natural[1] = max(natural[1], width("invalid"))
    widths = fit_widths(natural, SHRINK)
    lines = [cut(f"{settings.name}: times in {settings.timezone.key}", WIDTH), row(HEADER, widths)]
    lines += [row(cells, widths) for cells in rows]
    for b in bad:
        left = pad(f"{b.path.name}:{b.line}", widths[0]) + " " + pad("invalid", widths[1]) + " "
        lines.append(left + cut(b.message, WIDTH - width(left)))
    states = Counter(cells[1] for cells in rows)
    sources = Counter(cells[3] for cells in rows if cells[3] != "-")
    counts = [f"{states[s]:,} {s}" for s in STATES if states[s] or s == "active"]
    lines += wrapped(f"{len(rows):,} people: {', '.join(counts)}")
    by_source = ", ".join(f"{n:,} {source}" for source, n in sorted(sources.items()))
    lines += wrapped(f"sources: {by_source or 'none'}; {len(bad):,} invalid row(s)")
    names = "; ".join(f"{n} {k.name}" for n, k in enumerate(settings.keywords, 1))
    lines += wrapped(f"topics: {names}")
    return lines


def as_json(settings: Settings, entries: Iterable[Entry | BadRow], today: date) -> list[Any]:
    """Return everyone as objects for scripts (email, status, source, topics, schedule, …)."""
    names = {k.key: k.name for k in settings.keywords}
    found: list[Any] = []
    for e in entries:
        if isinstance(e, BadRow):
            found.append({"email": None, "status": "invalid", "source": "csv", "file": e.path.name,
                          "line": e.line, "problem": e.message})  # fmt: skip
            continue
        r = e.reader
        since = e.suppressed[1].astimezone(settings.timezone).isoformat() if e.suppressed else None
        found.append({
            "email": e.email, "name": r.name if r else None, "status": e.state(today),
            "since": since, "source": r.source if r else None,
            "topics": [names[k] for k in r.topics] if r else [],
            "schedule": r.frequency if r else None,
            "weekday": WEEKDAYS[r.weekday] if r and r.weekday is not None else None,
            "paused_until": str(r.paused_until) if r and r.paused_until else None,
            "abstracts": r.abstracts if r else None, "own_topics": e.own_topics,
        })  # fmt: skip
    return found


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
