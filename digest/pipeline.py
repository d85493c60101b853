"""One cycle: fetch -> diff -> render -> send -> archive."""

from __future__ import annotations

import asyncio
import email as email_package
import email.policy as email_policy
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .archive import render_archive, write_atomically
from .config import Keyword, Settings
from .delivery import Delivery, DeliveryReport
from .fetch import Fetched, FetchError, Window, fetch_keywords
from .lock import lock_for
from .mail import new_message_id
from .models import KeywordResult, Paper
from .progress import LogProgress, Progress
from .render import Renderer, make_environment
from .store import Store
from .subscribers import BadRow, Subscriber, read_subscribers
from .tokens import token_id

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    """What a cycle did, for the summary line and the exit code."""

    keywords: list[KeywordResult] = field(default_factory=list)
    planned: int = 0
    editions: int = 0
    bad_rows: list[str] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    archive_changed: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether every keyword was fetched and every message delivered."""
        failed = self.delivery.failed + self.delivery.pending
        return not any(k.failed for k in self.keywords) and not failed

    def record(self) -> dict[str, object]:
        """Return what the database keeps of the cycle (for /healthz and the logs)."""
        d = self.delivery
        return {
            "summary": self.summary(),
            "failed_keywords": [k.keyword for k in self.keywords if k.failed],
            "errors": {k.keyword: k.error for k in self.keywords if k.failed},
            "warnings": [k.warning for k in self.keywords if k.warning],
            "sent": d.sent,
            "failed": d.failed,
            "pending": d.pending,
        }

    def summary(self) -> str:
        """Return the one-line summary of the cycle."""
        words = "; ".join(k.describe() for k in self.keywords)
        d = self.delivery
        return (
            f"summary: {words}. {d.sent} emails sent, {d.failed} failed, {d.pending} still "
            f"queued, {d.skipped} skipped; {len(self.bad_rows)} bad subscriber rows"
        )


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


def windows(settings: Settings, store: Store, now: datetime) -> dict[str, Window]:
    """Return how far back each keyword's fetch must reach.

    Back to the newest update its last fetch saw, less an overlap for arXiv's announcement
    lag; a keyword never fetched (or whose query changed) reaches back first_run_days.
    """
    states = store.keyword_states(queries(settings))
    overlap = timedelta(days=settings.arxiv.overlap_days)
    first = now - timedelta(days=settings.first_run_days)
    found = {}
    for keyword in settings.keywords:
        state = states.get(keyword.key)
        mark = state.watermark if state else None
        found[keyword.key] = Window(
            since=mark - overlap if mark else first,
            had_papers=bool(state and state.count),
            first=mark is None,
        )
    return found


def fetch_all(
    settings: Settings,
    report: CycleReport,
    windows: dict[str, Window],
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> dict[str, Fetched]:
    """Fetch every keyword; a failing keyword is reported and left out."""
    progress = progress or Progress()
    found: dict[str, Fetched] = {}
    progress.start("fetch", len(settings.keywords))

    def done(keyword: Keyword, outcome: Fetched | FetchError) -> None:
        result = KeywordResult(keyword.name)
        report.keywords.append(result)
        progress.advance()
        if isinstance(outcome, FetchError):
            result.error = str(outcome)
            log.error("fetch: %s: %s; nothing of it is marked seen", keyword.name, outcome)
            return
        found[keyword.key] = outcome
        result.fetched, result.skipped = len(outcome.papers), len(outcome.skipped)
        if outcome.truncated:
            result.limit = settings.arxiv.max_papers
            log.warning("fetch: %s", result.warning)

    jobs = [(k, windows[k.key]) for k in settings.keywords]
    requests = fetch_keywords(settings.arxiv, jobs, done, stop, progress.beat)
    progress.finish()
    log.info(
        "fetch: %d keywords, %d requests, %d papers",
        len(settings.keywords),
        requests,
        sum(len(f.papers) for f in found.values()),
    )
    return found


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
    """Record what was seen and plan one message per subscriber with news (one transaction)."""
    names = {k.key: k.name for k in settings.keywords}
    results = dict(zip(names, report.keywords, strict=True))
    query = queries(settings)
    for key, fetched in found.items():
        recorded = store.record_keyword(
            key, fetched.papers, cycle_id, now, fetched.window.since, query[key]
        )
        results[key].new, results[key].late = recorded.new, recorded.late
        if recorded.late and not fetched.window.first:
            log.info(
                "diff: %s: %d unseen papers updated before %s recorded without mailing "
                "(raise [arxiv] overlap_days if arXiv announces papers later than that)",
                results[key].keyword,
                recorded.late,
                fetched.window.since.date(),
            )
    if found:
        log.info(
            "diff: %s",
            "; ".join(
                f"{r.keyword}: {len(r.new)} new" if r.new else f"{r.keyword}: no new papers"
                for key, r in results.items()
                if key in found
            ),
        )
    new_by_key = {key: results[key].new for key in names if results[key].new}
    all_new = {i for ids in new_by_key.values() for i in ids}
    papers, earlier = store.papers(all_new), store.earlier_keywords(all_new, cycle_id)
    renderer = Renderer(make_environment(settings.templates), settings.name, settings.archive_url)
    day = now.astimezone(settings.timezone).date()
    suppressed = store.suppressed()
    editions: dict[tuple[str, ...], int | None] = {}  # one rendered body per keyword set

    def edition_for(keys: tuple[str, ...]) -> int | None:
        if keys not in editions:
            sections = sections_for(keys, new_by_key, earlier, papers, names)
            notices = [
                f"arXiv had more than {results[k].limit} new papers for {names[k]} today; only "
                f"the newest {results[k].limit} were fetched (the list owner should narrow "
                "this topic)."
                for k in keys
                if results[k].limit is not None
            ]
            body = renderer.edition(sections, day, notices) if sections else None
            editions[keys] = body and store.add_edition(
                cycle_id, keys, body.papers, body.subject, body.text, body.html, body.placeholders
            )
        return editions[keys]

    recipients: list[tuple[str, str]] = []

    def rows() -> Iterator[dict[str, object]]:
        for sub in subscribers_of(settings, report):
            keys = tuple(k for k in sub.keywords if k in new_by_key)
            if not keys or sub.email.casefold() in suppressed:
                continue
            if (edition_id := edition_for(keys)) is None:
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

    store.plan_messages(rows(), now)
    store.remember_recipients(recipients)
    report.editions = sum(1 for e in editions.values() if e is not None)
    log.info(
        "render: %d messages planned from %d distinct digests", report.planned, report.editions
    )


def write_archive(settings: Settings, store: Store, now: datetime) -> bool:
    """Regenerate the markdown archive from the history; return whether it changed."""
    limit = settings.archive_rows
    sections = [(k.name, store.recent_papers(k.key, limit)) for k in settings.keywords]
    text = render_archive(settings.name, now.astimezone(settings.timezone).date(), limit, sections)
    changed = write_atomically(settings.archive, text)
    log.info("archive: %s %s", settings.archive.name, "updated" if changed else "unchanged")
    return changed


def run_once(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> CycleReport:
    """Run one whole cycle and return its report; raise CycleRunning if one already runs."""
    progress = progress or LogProgress()
    stop = stop or threading.Event()
    report = CycleReport()
    for _ in read_subscribers(settings.subscribers, settings.keywords):
        pass  # fail early, before fetching, on an unusable subscribers file
    with lock_for(settings.database), Store(settings.database) as store:
        secret = store.secret(settings.secret)
        cycle_id = store.begin_cycle(clock())
        try:
            found = fetch_all(settings, report, windows(settings, store, clock()), stop, progress)
            if not stop.is_set():
                with store.transaction():
                    plan(settings, store, found, cycle_id, clock(), report, secret)
                delivery = Delivery(settings, store, secret, clock, stop, progress)
                report.delivery = asyncio.run(delivery.run())
                d = report.delivery
                log.info(
                    "send: %d sent, %d refused, %d retried, %d still queued, %d bounced%s",
                    d.sent,
                    d.failed,
                    d.retried,
                    d.pending,
                    d.bounced,
                    f"; stopped early: {d.aborted}" if d.aborted else "",
                )
            report.archive_changed = write_archive(settings, store, clock())
        except BaseException:
            store.finish_cycle(cycle_id, "error", report.record(), clock())
            raise
        report.interrupted = stop.is_set()
        status = "interrupted" if report.interrupted else "ok" if report.ok else "partial"
        store.finish_cycle(cycle_id, status, report.record(), clock())
    log.info("%s", report.summary())
    return report


def render_preview(
    settings: Settings, email: str | None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
):
    """Return the message the next run would send to email (or the first one), recording nothing."""
    report = CycleReport()
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        found = fetch_all(settings, report, windows(settings, store, clock()))
        with store.scratch():
            now = clock()
            cycle_id = store.begin_cycle(now)
            plan(settings, store, found, cycle_id, now, report, secret)
            delivery = Delivery(settings, store, secret, clock)
            for item in store.pending():
                if item.cycle_id == cycle_id and (
                    email is None or item.email.casefold() == email.casefold()
                ):
                    return email_package.message_from_bytes(
                        delivery.message(item), policy=email_policy.default
                    )
    return None
