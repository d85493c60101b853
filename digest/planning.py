"""Plan a cycle: find what is new, and one message per subscriber with news."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

from .audience import due, readers
from .config import Settings
from .editions import Editions
from .fetch import Fetched
from .mail import new_message_id
from .models import KeywordResult
from .store import Store
from .tokens import token_id

if TYPE_CHECKING:
    from .pipeline import CycleReport

log = logging.getLogger(__name__)


def queries(settings: Settings) -> dict[str, str]:
    """Return each keyword's arXiv query by its key."""
    return {k.key: k.search_query() for k in settings.keywords}


def plan(
    settings: Settings,
    store: Store,
    found: dict[str, Fetched],
    cycle_id: int,
    now: datetime,
    report: CycleReport,
    secret: bytes,
) -> None:
    """Find what is new, plan one message per subscriber with news, then record it all.

    Messages are written in small batches that the send phase does not see until one last
    short transaction records the history and marks the cycle planned. A crash before it
    loses nothing (the papers are news again next cycle), and no transaction holds the
    database for long, so an unsubscribe never waits for planning.
    """
    names = {k.key: k.name for k in settings.keywords}
    results = dict(zip(names, report.keywords, strict=True))
    store.record_papers(p for fetched in found.values() for p in fetched.papers)
    for key, fetched in found.items():
        diff = store.diff_keyword(key, fetched.papers, fetched.window.since)
        results[key].new, results[key].late = diff.new, diff.late
        if diff.late and not fetched.window.first:
            log.info(
                "diff: %s: %d unseen papers updated before %s recorded without mailing "
                "(raise [arxiv] overlap_days if arXiv announces papers later than that)",
                results[key].keyword,
                diff.late,
                fetched.window.since.date(),
            )
    if found:
        log.info("diff: %s", "; ".join(_news(r) for key, r in results.items() if key in found))
    day = now.astimezone(settings.timezone).date()
    advanced: tuple[list[str], list[str]] = ([], [])
    rows = _messages(settings, store, results, cycle_id, day, report, secret, advanced)
    store.plan_messages(rows, now)
    query = queries(settings)
    with store.transaction():
        for key, fetched in found.items():
            store.record_keyword(key, fetched.papers, cycle_id, now, query[key], results[key].new)
        store.advance(cycle_id, day, *advanced)
        store.mark_planned(cycle_id, now)
    log.info(
        "render: %d messages planned from %d distinct digests", report.planned, report.editions
    )


def _news(result: KeywordResult) -> str:
    return (
        f"{result.keyword}: {len(result.new)} new"
        if result.new
        else (f"{result.keyword}: no new papers")
    )


def _messages(
    settings: Settings,
    store: Store,
    results: dict[str, KeywordResult],
    cycle_id: int,
    day: date,
    report: CycleReport,
    secret: bytes,
    advanced: tuple[list[str], list[str]],
) -> Iterator[dict[str, object]]:
    """Yield one outbox row per reader with news today, each distinct digest rendered once.

    `advanced` collects the people whose window moves to this cycle: (covered while paused,
    due today), recorded with the plan.
    """
    editions = Editions(settings, store, results, cycle_id, day)
    suppressed = store.suppressed()
    covered, sent = advanced
    recipients: list[tuple] = []
    for reader in readers(settings, store, report):
        if not reader.topics or reader.key in suppressed:
            continue
        decision = due(reader, day)
        if not decision.mail:
            if decision.covered:
                covered.append(reader.key)
            continue
        if reader.chosen:
            sent.append(reader.key)
        if (edition_id := editions.edition_for(reader, decision)) is None:
            continue
        report.planned += 1
        recipients.append(
            (
                token_id(secret, reader.email),
                reader.email,
                reader.name,
                reader.topics,
                reader.source,
            )
        )
        if len(recipients) >= 1000:  # keep memory flat however long the list
            store.remember_recipients(recipients)
            recipients.clear()
        yield {
            "cycle_id": cycle_id,
            "edition_id": edition_id,
            "email": reader.email,
            "name": reader.name,
            "message_id": new_message_id(settings.sender),
        }
    store.remember_recipients(recipients)
    report.editions = editions.count
