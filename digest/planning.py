"""Plan a cycle: find what is new, and one message per subscriber with news."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING

from .addresses import address_key
from .config import Settings, slugs
from .fetch import Fetched
from .mail import new_message_id
from .models import KeywordResult, Paper
from .render import Renderer, make_environment
from .store import Store
from .subscribers import BadRow, Subscriber, read_subscribers
from .tokens import token_id

if TYPE_CHECKING:
    from .pipeline import CycleReport

log = logging.getLogger(__name__)


def subscribers_of(settings: Settings, report: CycleReport | None = None) -> Iterator[Subscriber]:
    """Yield the valid subscribers, logging (and noting) each bad row."""
    for entry in read_subscribers(settings.subscribers, settings.keywords):
        if isinstance(entry, BadRow):
            log.warning("skipping %s", entry)
            if report is not None:
                report.bad_rows.append(str(entry))
            continue
        yield entry


def queries(settings: Settings) -> dict[str, str]:
    """Return each keyword's arXiv query by its key."""
    return {k.key: k.search_query() for k in settings.keywords}


def sections_for(
    keys: tuple[str, ...],
    new_by_key: dict[str, list[str]],
    earlier: dict[str, set[str]],
    papers: dict[str, Paper],
    names: dict[str, str],
) -> list[tuple[str, list[tuple[Paper, tuple[str, ...]]]]]:
    """Group the news of a keyword set: each paper once, under its first keyword, with tags.

    A paper already seen before this cycle under one of these keywords is not news to
    someone who follows them all.
    """
    sections, placed = [], set()
    for key in keys:
        items = []
        for paper_id in new_by_key[key]:
            if paper_id in placed or earlier.get(paper_id, set()) & set(keys):
                continue
            placed.add(paper_id)
            tags = tuple(names[k] for k in keys if k != key and paper_id in new_by_key[k])
            items.append((papers[paper_id], tags))
        if items:
            sections.append((names[key], items))
    return sections


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
    store.plan_messages(_messages(settings, store, results, cycle_id, now, report, secret), now)
    query = queries(settings)
    with store.transaction():
        for key, fetched in found.items():
            store.record_keyword(key, fetched.papers, cycle_id, now, query[key], results[key].new)
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


def _web_links(
    settings: Settings, day: date, followed: tuple[str, ...], keys: tuple[str, ...]
) -> tuple[str | None, dict[str, str]]:
    """Return this email's page in the reading room, and where each topic's full list is.

    With the reading room off, a topic's full list is arXiv's own listing of it.
    """
    keywords = {k.key: k for k in settings.keywords}
    if not settings.web_pages:
        return None, {keywords[k].name: keywords[k].listing_url() for k in keys}
    slug = slugs(settings.keywords)
    base = f"{settings.base_url}/days/{day.isoformat()}"
    more = {keywords[k].name: f"{base}/{slug[k]}" for k in keys}
    return f"{base}/{'+'.join(slug[k] for k in followed)}", more


def _notices(results: dict[str, KeywordResult], keys: tuple[str, ...]) -> list[str]:
    """Return the email's notes about keywords whose fetch hit the bound."""
    return [
        f"arXiv had more than {results[k].limit} new papers for {results[k].keyword} today; "
        f"only the newest {results[k].limit} were fetched (the list owner should narrow this "
        "topic)."
        for k in keys
        if results[k].limit is not None
    ]


def _messages(
    settings: Settings,
    store: Store,
    results: dict[str, KeywordResult],
    cycle_id: int,
    now: datetime,
    report: CycleReport,
    secret: bytes,
) -> Iterator[dict[str, object]]:
    """Yield one outbox row per subscriber with news, rendering each keyword set's body once."""
    names = {key: result.keyword for key, result in results.items()}
    new_by_key = {key: result.new for key, result in results.items() if result.new}
    all_new = {i for ids in new_by_key.values() for i in ids}
    papers, earlier = store.papers(all_new), store.earlier_keywords(all_new, cycle_id)
    renderer = Renderer(
        make_environment(settings.templates),
        settings.name,
        settings.archive_url,
        parseaddr(settings.sender)[1],
        settings.abstracts,
    )
    day = now.astimezone(settings.timezone).date()
    suppressed = store.suppressed()
    editions: dict[tuple[str, ...], int | None] = {}  # one rendered body per keyword set
    recipients: list[tuple[str, str]] = []
    for sub in subscribers_of(settings, report):
        followed = sub.keywords  # one body per set of followed topics: the footer names them
        keys = tuple(k for k in followed if k in new_by_key)
        if not keys or address_key(sub.email) in suppressed:
            continue
        if followed not in editions:
            sections = sections_for(keys, new_by_key, earlier, papers, names)
            body = None
            if sections:
                topics = [names[k] for k in followed]
                web = _web_links(settings, day, followed, keys)
                body = renderer.edition(sections, day, _notices(results, keys), topics, *web)
            editions[followed] = body and store.add_edition(
                cycle_id,
                followed,  # the reader's topics: the day page of "View in your browser"
                body.papers,
                body.subject,
                body.text,
                body.html,
                body.placeholders,
            )
            report.editions += body is not None
        if (edition_id := editions[followed]) is None:
            continue
        report.planned += 1
        recipients.append((token_id(secret, sub.email), sub.email))
        if len(recipients) >= 1000:  # keep memory flat however long the list
            store.remember_recipients(recipients)
            recipients.clear()
        yield {
            "cycle_id": cycle_id,
            "edition_id": edition_id,
            "email": sub.email,
            "name": sub.name,
            "message_id": new_message_id(settings.sender),
        }
    store.remember_recipients(recipients)
