"""One cycle: fetch -> diff -> render -> send -> archive."""

from __future__ import annotations

import asyncio
import email as email_package
import email.policy as email_policy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from .archive import ArchiveError, render_archive, write_atomically
from .bounces import read_in_cycle
from .config import Keyword, Settings
from .delivery import Delivery, DeliveryReport
from .fetch import Fetched, FetchError, Window, fetch_keywords
from .lock import lock_for
from .models import KeywordResult
from .planning import plan, queries
from .progress import LogProgress, Progress
from .signing import signing_secret
from .store import Store
from .subscribers import read_subscribers

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
    archive_error: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether every keyword was fetched and every message delivered."""
        failed = self.delivery.failed + self.delivery.pending
        return not any(k.failed for k in self.keywords) and not failed and not self.archive_error

    def record(self) -> dict[str, object]:
        """Return what the database keeps of the cycle (for /healthz and the logs)."""
        d = self.delivery
        return {
            "summary": self.summary(),
            "failed_keywords": [k.keyword for k in self.keywords if k.failed],
            "errors": {k.keyword: k.error for k in self.keywords if k.failed},
            "warnings": [k.warning for k in self.keywords if k.warning],
            "archive_error": self.archive_error,
            "sent": d.sent,
            "failed": d.failed,
            "pending": d.pending,
        }

    def summary(self) -> str:
        """Return the one-line summary of the cycle."""
        words = "; ".join(k.describe() for k in self.keywords)
        d = self.delivery
        archive = "; the archive was NOT written" if self.archive_error else ""
        return (
            f"summary: {words}. {d.sent} emails sent, {d.failed} failed, {d.pending} still "
            f"queued, {d.skipped} skipped; {len(self.bad_rows)} bad subscriber rows{archive}"
        )


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
            had_papers=bool(state and state.papers),
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
    new_secret: bool = False,
) -> CycleReport:
    """Run one whole cycle and return its report; raise CycleRunning if one already runs,
    SecretChanged (before fetching or recording anything) if its secret is not the one that
    signed the mail already sent, unless new_secret says the change is intended."""
    progress = progress or LogProgress()
    stop = stop or threading.Event()
    report = CycleReport()
    for _ in read_subscribers(settings.subscribers, settings.keywords):
        pass  # fail early, before fetching, on an unusable subscribers file
    with lock_for(settings.database), Store(settings.database) as store:
        secret = signing_secret(store, settings.secret, clock(), new_secret)
        cycle_id = store.begin_cycle(clock())
        store.apply_journal()  # requests the web endpoint kept while the database was busy
        read_in_cycle(settings, store, secret, clock(), progress.beat)  # late bounces first
        try:
            found = fetch_all(settings, report, windows(settings, store, clock()), stop, progress)
            if not stop.is_set():
                plan(settings, store, found, cycle_id, clock(), report, secret)
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
