"""The operator's view of the list: the numbers /admin plots and `digest stats` prints.

Read from the database alone (every cycle records what they need), so they include cycles run
by `digest once` from a timer; days are the list's own (its time zone).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .census import STATUSES
from .charts import text_sparkline
from .config import Settings
from .store import Counts, CycleRecord, Store

WINDOW_DAYS = 90  # the plots' days
TEXT_DAYS = 30  # the terminal's sparklines: one character a day
WIDTH = 80  # columns of `digest stats`


@dataclass(frozen=True)
class CycleView:
    """One cycle as the operator sees it: when (the list's time), what it did, what it warned."""

    record: CycleRecord
    started: datetime  # in the list's time zone
    new: int  # papers new to readers, all topics
    mails: dict[str, int]  # its messages by status (sent, failed, pending, skipped), bounced
    warnings: tuple[str, ...]

    @property
    def sent(self) -> int:
        """Return how many of the cycle's messages were sent."""
        return self.mails.get("sent", 0)

    @property
    def failed(self) -> int:
        """Return how many of the cycle's messages the relay refused for good."""
        return self.mails.get("failed", 0)

    @property
    def bounced(self) -> int:
        """Return how many of the cycle's messages bounced later (the bounce mailbox)."""
        return self.mails.get("bounced", 0)


@dataclass(frozen=True)
class TopicActivity:
    """A topic's new papers on each day of the window."""

    name: str
    per_day: tuple[int, ...]

    @property
    def total(self) -> int:
        """Return the papers new in the whole window."""
        return sum(self.per_day)


@dataclass(frozen=True)
class Dashboard:
    """Everything the operator's view shows, read at one moment."""

    name: str
    zone: str
    now: datetime  # in the list's time zone
    days: tuple[date, ...]  # the window, oldest first, today last
    topics: tuple[TopicActivity, ...]
    cycles: tuple[CycleView, ...]  # the window's cycles, oldest first
    census: tuple[tuple[date, dict[str, int]], ...]  # each day counted, oldest first
    counts: Counts

    @property
    def statuses(self) -> list[str]:
        """Return the census's statuses in order: the usual ones, then any other recorded."""
        seen = {status for _, counts in self.census for status in counts}
        seen |= set(self.counts.census)  # the last count, though older than the window
        return [s for s in STATUSES if s in seen] + sorted(seen - set(STATUSES))

    @property
    def refused_share(self) -> float | None:
        """Return the share of digests refused or bounced, of all that went or were refused."""
        mails = self.counts.mails
        tried = mails.sent + mails.failed
        return (mails.failed + mails.bounced) / tried if tried else None


def warnings_of(record: CycleRecord) -> tuple[str, ...]:
    """Return what a cycle warned about: keywords that failed or hit their bound, the archive,
    channels behind."""
    summary = record.summary
    found = [f"{kw}: {error}" for kw, error in (summary.get("errors") or {}).items()]
    found += list(summary.get("warnings") or ())
    if summary.get("archive_error"):
        found.append(f"archive not written: {summary['archive_error']}")
    for name, error in (summary.get("channel_errors") or {}).items():
        found.append(f"channel {name} behind: {error}")
    if summary.get("failed"):
        found.append(f"{summary['failed']} digest(s) refused by the relay")
    if summary.get("pending"):
        found.append(f"{summary['pending']} digest(s) still queued for the next cycle")
    if record.status == "crashed":
        found.append("the process ended during the cycle; the next one went on from there")
    return tuple(found)


def read_dashboard(settings: Settings, store: Store, now: datetime) -> Dashboard:
    """Read everything the operator's view shows from the database."""
    zone = settings.timezone
    today = now.astimezone(zone).date()
    days = tuple(today - timedelta(days=n) for n in range(WINDOW_DAYS - 1, -1, -1))
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=zone)
    records = store.cycle_records(since)
    news = store.news_since(since)
    index = {day: n for n, day in enumerate(days)}
    per_topic = {k.key: [0] * len(days) for k in settings.keywords}
    per_cycle: dict[int, int] = {}
    for cycle_id, moment, key, new in news:
        per_cycle[cycle_id] = per_cycle.get(cycle_id, 0) + new
        slot = index.get(moment.astimezone(zone).date())
        if key in per_topic and slot is not None:
            per_topic[key][slot] += new
    mails = store.mails_by_cycle(records[0].id) if records else {}
    cycles = tuple(
        CycleView(
            record=r,
            started=r.started_at.astimezone(zone),
            new=per_cycle.get(r.id, 0),
            mails=mails.get(r.id, {}),
            warnings=warnings_of(r),
        )
        for r in records
    )
    return Dashboard(
        name=settings.name,
        zone=zone.key,
        now=now.astimezone(zone),
        days=days,
        topics=tuple(TopicActivity(k.name, tuple(per_topic[k.key])) for k in settings.keywords),
        cycles=cycles,
        census=tuple(store.census_since(days[0])),
        counts=store.counts(),
    )


def duration(seconds: float | None) -> str:
    """Return a duration in at most 6 characters: '12 s', '4 min', '2.5 h'."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrapped(label: str, text: str) -> list[str]:
    """Return a labelled paragraph within WIDTH columns, the rest indented under its text;
    a number stays on the line of the word it counts ("3 active")."""
    kept = re.sub(r"(\d) ", "\\1\xa0", text)  # textwrap breaks at ASCII spaces only
    lines = textwrap.wrap(kept, WIDTH, initial_indent=f"{label:<13} ", subsequent_indent=" " * 14)
    return [line.replace("\xa0", " ") for line in lines] or [label]


def text_lines(board: Dashboard, recent: int = 10) -> list[str]:
    """Return the operator's view as lines of at most 80 columns, for a terminal."""
    counts = board.counts
    lines = [_cut(f"{board.name}, {board.now:%Y-%m-%d %H:%M} ({board.zone})", WIDTH), ""]
    last = counts.last_success
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(counts.cycles.items()))
    lines += _wrapped(
        "Cycles",
        (f"last success {last.astimezone(board.now.tzinfo):%Y-%m-%d %H:%M}" if last else
         "no cycle has succeeded yet") + (f"; all cycles: {outcomes}" if outcomes else ""),
    )  # fmt: skip
    waiting = counts.oldest_waiting
    lines += _wrapped(
        "Outbox",
        f"{counts.mails.waiting:,} waiting"
        + (f", the oldest planned {waiting.astimezone(board.now.tzinfo):%Y-%m-%d %H:%M}"
           if waiting else ""),
    )  # fmt: skip
    mails, share = counts.mails, board.refused_share
    lines += _wrapped(
        "Mail",
        f"{mails.sent:,} sent, {mails.failed:,} refused, {mails.deferred:,} deferred, "
        f"{mails.bounced:,} bounced later"
        + (f" ({100 * share:.1f} % refused or bounced)" if share is not None else ""),
    )
    if counts.census_day is not None:
        listed = ", ".join(f"{n:,} {s}" for s, n in _ordered(counts.census))
        lines += _wrapped("Subscribers", f"{listed} (counted {counts.census_day})")
    else:
        lines += _wrapped("Subscribers", "not counted yet: each cycle counts them")
    lines += ["", f"New papers per topic, the last {TEXT_DAYS} days (newest right)"]
    lines.append(f"  {'topic':<24} {'one mark a day':<{TEXT_DAYS}} {'7 d':>6} {'90 d':>7}")
    for topic in board.topics:
        days = topic.per_day[-TEXT_DAYS:]
        lines.append(
            f"  {_cut(topic.name, 24):<24} {text_sparkline(days)} "
            f"{sum(topic.per_day[-7:]):>6,} {topic.total:>7,}"
        )
    lines += ["", f"Recent cycles (started in {board.zone})"]
    lines.append(
        f"  {'#':>5}  {'started':<16}  {'status':<11} {'took':>6} {'fetch':>6} "
        f"{'new':>4} {'sent':>5} {'fail':>4} {'bnc':>4}"
    )
    for view in board.cycles[-recent:] if recent else ():
        r = view.record
        lines.append(
            f"  {r.id:>5}  {view.started:%Y-%m-%d %H:%M}  {_cut(r.status, 11):<11} "
            f"{duration(r.seconds):>6} {duration(r.fetch_seconds):>6} {view.new:>4} "
            f"{view.sent:>5} {view.failed:>4} {view.bounced:>4}"
        )
        for warning in view.warnings:
            lines += textwrap.wrap(
                warning, WIDTH, initial_indent="         ! ", subsequent_indent=" " * 11
            )
    if not board.cycles:
        lines.append(f"  no cycle in the last {WINDOW_DAYS} days")
    return [_cut(line, WIDTH) for line in lines]


def _ordered(counts: dict[str, int]) -> Sequence[tuple[str, int]]:
    """Return a census's counts in the usual order of statuses, then any other."""
    order = {status: n for n, status in enumerate(STATUSES)}
    return sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
