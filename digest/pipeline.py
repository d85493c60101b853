"""One cycle: fetch -> diff -> render -> send -> archive."""

from __future__ import annotations

import asyncio
import email as email_package
import email.policy as email_policy
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from .archive import ArchiveError, render_archive, save_archive
from .bounces import read_in_cycle
from .census import fetch_rows, news_counts, take_census
from .channels import ChannelPhase
from .config import Keyword, Settings
from .delivery import Delivery
from .fetch import Fetched, FetchError, FetchWindow, fetch_keywords
from .lock import lock_for
from .models import CycleReport, KeywordResult
from .planning import plan, queries
from .progress import LogProgress, Progress
from .signing import signing_secret
from .store import Store
from .subscribers import check_header

log = logging.getLogger(__name__)


def windows(settings: Settings, store: Store, now: datetime) -> dict[str, FetchWindow]:
    """Return how far back each keyword's fetch must reach.

    Back to the newest update its last fetch saw, less an overlap for arXiv's announcement
    lag; a keyword never fetched (or whose query changed) reaches back first_run_days.
    """
    states = store.keyword_states(queries(settings))
    first = now - timedelta(days=settings.first_run_days)
    found = {}
    for keyword in settings.fetched_keywords:  # the harvest entries page the same way
        overlap = timedelta(days=settings.arxiv.bounds(keyword.key).overlap_days)
        state = states.get(keyword.key)
        mark = state.watermark if state else None
        found[keyword.key] = FetchWindow(
            since=mark - overlap if mark else first,
            had_papers=bool(state and state.papers),
            first=mark is None,
        )
    return found


def fetch_all(
    settings: Settings,
    windows: dict[str, FetchWindow],
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Fetched], list[KeywordResult]]:
    """Fetch every keyword; return the papers of those fetched, and each keyword's result (in
    settings order; a failing keyword's says why, and it has no papers)."""
    progress = progress or Progress()
    found: dict[str, Fetched] = {}
    results: list[KeywordResult] = []
    fetched = settings.fetched_keywords  # keywords, then harvest entries ([arxiv] harvest)
    progress.start("fetch", len(fetched))

    def done(keyword: Keyword, outcome: Fetched | FetchError) -> None:
        results.append(outcome_of(settings, keyword, outcome))
        progress.advance()
        if isinstance(outcome, FetchError):
            log.error("fetch: %s: %s; nothing of it is marked seen", keyword.name, outcome)
            return
        found[keyword.key] = outcome
        if outcome.truncated:
            log.warning("fetch: %s", results[-1].warning)

    jobs = [(k, windows[k.key]) for k in fetched]
    requests = fetch_keywords(settings.arxiv, jobs, done, stop, progress.beat)
    progress.finish()
    log.info(
        "fetch: %d keywords, %d harvest entries, %d requests, %d papers",
        sum(not k.local for k in settings.keywords),  # local ones are matched in planning
        len(settings.arxiv.harvest),
        requests,
        sum(len(f.papers) for f in found.values()),
    )
    return found, results


def outcome_of(
    settings: Settings, keyword: Keyword, outcome: Fetched | FetchError
) -> KeywordResult:
    """Return what a keyword's fetch came to: its counts, or its error."""
    if isinstance(outcome, FetchError):
        return KeywordResult(
            keyword.name, error=str(outcome), requests=outcome.requests, retries=outcome.retries
        )
    bounds = settings.arxiv.bounds(keyword.key)
    limit = bounds.max_papers if outcome.truncated else None
    return KeywordResult(
        keyword.name,
        len(outcome.papers),
        skipped=len(outcome.skipped),
        limit=limit,
        bound_key=bounds.bound_key,
        requests=outcome.requests,
        retries=outcome.retries,
    )


def write_archive(settings: Settings, store: Store, now: datetime) -> bool:
    """Regenerate the markdown archive from the history; return whether it changed."""
    limit = settings.archive_rows
    sections = [(k.name, store.recent_papers(k.key, limit)) for k in settings.keywords]
    day = now.astimezone(settings.timezone).date()
    text = render_archive(settings.name, day, limit, sections, settings.archive_intro)
    changed = save_archive(settings.archive, text)
    log.info("archive: %s %s", settings.archive.name, "updated" if changed else "unchanged")
    return changed


def run_once(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    new_secret: bool = False,
) -> CycleReport:
    """Run one whole cycle and return its report; raise CycleRunning if one already runs,
    SecretChanged (before fetching or recording anything) if its secret is not the one that
    signed the mail already sent, unless new_secret says the change is intended."""
    progress = progress or LogProgress()
    stop = stop or threading.Event()
    report = CycleReport()
    check_header(settings.subscribers)  # fail early, before fetching, on an unusable file
    with lock_for(settings.database), Store(settings.database) as store:
        secret = signing_secret(store, settings.secret, clock(), new_secret)
        cycle_id = store.begin_cycle(clock())
        store.apply_journal()  # requests the web endpoint kept while the database was busy
        read_in_cycle(settings, store, secret, clock(), progress.beat)  # late bounces first
        try:
            fetching = time.monotonic()
            found, report.keywords = fetch_all(
                settings, windows(settings, store, clock()), stop, progress
            )
            costs = fetch_rows(report.keywords, stop.is_set())  # for /metrics and /admin
            store.record_fetches(cycle_id, costs, time.monotonic() - fetching)
            if not stop.is_set():
                planned = plan(settings, store, found, report.keywords, cycle_id, clock(), secret)
                store.record_news(cycle_id, news_counts(planned.keywords))
                take_census(settings, store, planned.listed, len(planned.bad_rows), clock())
                report.keywords = list(planned.keywords)
                report.planned, report.editions = planned.planned, planned.editions
                report.bad_rows = list(planned.bad_rows)
                store.apply_journal()
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
            try:
                report.archive_changed = write_archive(settings, store, clock())
            except ArchiveError as exc:  # the mail went out; only the archive waits
                report.archive_error = str(exc)
                log.error("archive: %s", exc)
            if settings.channels and not stop.is_set():  # after the mail: never holding it up
                report.channels = ChannelPhase(settings, store, clock, stop).run()
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
) -> EmailMessage | None:
    """Return the message the next run would send to email (or the first one), recording nothing."""
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        found, results = fetch_all(settings, windows(settings, store, clock()))
        with store.scratch():
            now = clock()
            cycle_id = store.begin_cycle(now)
            plan(settings, store, found, results, cycle_id, now, secret)
            delivery = Delivery(settings, store, secret, clock)
            for item in store.pending():
                if item.cycle_id == cycle_id and (
                    email is None or item.email.casefold() == email.casefold()
                ):
                    return email_package.message_from_bytes(
                        delivery.message(item), policy=email_policy.default
                    )
    return None
