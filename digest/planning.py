"""Plan a cycle: find what is new, and one message per subscriber with news."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from .channel_news import planned_posts
from .config import Settings, is_harvest
from .editions import EditionBuilder, Editions, notes
from .fetch import Fetched
from .mail import new_message_id
from .models import KeywordResult, Paper
from .own_matches import OwnMatches
from .ranker import Ranker
from .readers import Reader, due, roll
from .store import Store
from .tokens import token_id

log = logging.getLogger(__name__)

LOCAL = "local:"  # what the history keeps as a local keyword's query: no fetch window of its own
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a local keyword's news: every new match


@dataclass(frozen=True)
class Plan:
    """What planning did: each keyword's news, the messages and digests planned, bad rows."""

    keywords: tuple[KeywordResult, ...]  # the fetch's results, with what was new
    planned: int
    editions: int
    bad_rows: tuple[str, ...]
    listed: dict[str, int] = field(default_factory=dict)  # readers not suppressed: active, paused


def queries(settings: Settings) -> dict[str, str]:
    """Return each keyword's (and harvest entry's) arXiv query by its key."""
    return {k.key: k.search_query() for k in settings.fetched_keywords}


def plan(
    settings: Settings,
    store: Store,
    found: dict[str, Fetched],
    keywords: Sequence[KeywordResult],
    cycle_id: int,
    now: datetime,
    secret: bytes,
) -> Plan:
    """Find what is new, plan one message per subscriber with news, record it all; return
    what was planned (`keywords`: each keyword's result of the fetch, in settings order).

    Messages are written in small batches that the send phase does not see until one last
    short transaction records the history (and the papers that arrived) and marks the cycle
    planned. A crash before it loses nothing (the papers are news again next cycle), and no
    transaction holds the database for long, so an unsubscribe never waits for planning.
    """
    names = {k.key: k.name for k in settings.fetched_keywords}
    results = dict(zip(names, keywords, strict=True))
    store.record_papers(p for fetched in found.values() for p in fetched.papers)
    for key, fetched in found.items():
        diff = store.diff_keyword(key, fetched.papers, fetched.window.since)
        results[key] = replace(results[key], new=diff.new, late=diff.late)
        if diff.late and not fetched.window.first:
            log.info(
                "diff: %s: %d unseen papers updated before %s recorded without mailing "
                "(raise [arxiv] %s if arXiv announces papers later than that)",
                results[key].keyword,
                diff.late,
                fetched.window.since.date(),
                "harvest_overlap_days" if is_harvest(key) else "overlap_days",
            )
        elif diff.late and not is_harvest(key):  # its first fetch: the older ones not mailed
            log.info(
                "diff: %s: first fetch: %d papers updated before %s (first_run_days = %d) "
                "recorded for the archive only, not mailed",
                results[key].keyword,
                diff.late,
                fetched.window.since.date(),
                settings.first_run_days,
            )
    arrived = arrivals(store, found, results)
    own = OwnMatches(store, cycle_id, arrived)
    try:
        local = local_news(settings, store, own)
        results = _in_order(settings, results, {key: r for key, (r, _) in local.items()})
        shown = [key for key in results if key in found or key in local]
        if shown:
            log.info("diff: %s", "; ".join(_news(results[key]) for key in shown))
        day = now.astimezone(settings.timezone).date()
        topics = {key: r for key, r in results.items() if not is_harvest(key)}  # harvest: no mail
        messages = _Messages(settings, store, topics, cycle_id, day, secret, own, now)
        store.plan_messages(messages.rows(), now)
    finally:
        own.close()
    query = queries(settings)
    posts = _posts(settings, store, topics, day)
    with store.transaction():
        for key, fetched in found.items():
            news = () if is_harvest(key) else results[key].new  # only a topic's news is shown
            store.record_keyword(key, fetched.papers, cycle_id, now, query[key], news)
        for key, (result, papers) in local.items():  # as if fetched: archive, room, feeds
            store.record_keyword(key, papers, cycle_id, now, LOCAL + key, result.new)
        store.record_arrivals(arrived, cycle_id, now)
        store.advance(cycle_id, day, messages.covered, messages.sent)
        store.plan_posts(posts, cycle_id, now)  # the [[channels]]' posts: planned with the mail
        store.mark_planned(cycle_id, now)
    log.info(
        "render: %d messages planned from %d distinct digests", messages.planned, messages.editions
    )
    return Plan(
        tuple(results.values()), messages.planned, messages.editions, tuple(messages.bad_rows),
        dict(messages.listed),
    )  # fmt: skip


def _posts(
    settings: Settings, store: Store, topics: dict[str, KeywordResult], day: date
) -> list[dict[str, object]]:
    """Return the posts of the day's news to the [[channels]] (none without channels)."""
    if not settings.channels:
        return []
    papers = store.papers({i for result in topics.values() for i in result.new})
    return planned_posts(settings, topics, papers, day)


def arrivals(
    store: Store, found: dict[str, Fetched], results: dict[str, KeywordResult]
) -> dict[str, Paper]:
    """Return the cycle's new papers: every fetched keyword's and harvest entry's news that
    did not arrive in an earlier cycle (what own topics and local keywords are matched in)."""
    news = {i for key in found for i in results[key].new}
    if not news:
        return {}
    fresh = store.unarrived(news)
    papers: dict[str, Paper] = {}
    for fetched in found.values():
        for paper in fetched.papers:
            if paper.id in fresh and (
                paper.id not in papers or paper.version > papers[paper.id].version
            ):
                papers[paper.id] = paper  # its newest version, as the history keeps it
    return papers


def local_news(
    settings: Settings, store: Store, own: OwnMatches
) -> dict[str, tuple[KeywordResult, list[Paper]]]:
    """Match each local keyword in the cycle's new papers: its result (news: the matches not
    seen under it before, newest first) and the papers it matched, by key."""
    found = {}
    for keyword in settings.keywords:
        if not keyword.local:
            continue
        window = own.window(None)
        papers = [window.papers[i] for i in window.match(keyword.topic())]
        diff = store.diff_keyword(keyword.key, papers, EPOCH)
        result = KeywordResult(keyword.name, len(papers), new=diff.new, local=True)
        found[keyword.key] = (result, papers)
    return found


def _in_order(
    settings: Settings, fetched: dict[str, KeywordResult], local: dict[str, KeywordResult]
) -> dict[str, KeywordResult]:
    """Return every keyword's result in settings order, then the harvest entries'."""
    every = {**fetched, **local}
    order = [k.key for k in settings.keywords] + [k for k in fetched if is_harvest(k)]
    return {key: every[key] for key in order if key in every}


def _news(result: KeywordResult) -> str:
    return (
        f"{result.keyword}: {len(result.new)} new"
        if result.new
        else (f"{result.keyword}: no new papers")
    )


@dataclass
class _Messages:
    """A cycle's outbox rows, yielded as they are planned; what they came to, once all read."""

    settings: Settings
    store: Store
    results: dict[str, KeywordResult]
    cycle_id: int
    day: date
    secret: bytes
    own: OwnMatches | None = None  # readers' own topics (None: nobody's)
    now: datetime | None = None  # the cycle's moment (votes decay from it)
    planned: int = 0
    editions: int = 0
    bad_rows: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)  # windows moved without mail (paused)
    sent: list[str] = field(default_factory=list)  # people with choices mailed today
    listed: Counter[str] = field(default_factory=Counter)  # the census's active and paused

    def rows(self) -> Iterator[dict[str, object]]:
        """Yield one outbox row per reader with news today, each distinct digest rendered once."""
        settings, store, cycle_id, secret = self.settings, self.store, self.cycle_id, self.secret
        own = self.own if settings.web_personal_topics else None
        ranker = Ranker(
            store, self.now or datetime.now(UTC), settings.top_picks, settings.max_per_topic
        )
        news = {key: result.new for key, result in self.results.items()}
        builder = EditionBuilder(
            settings, store, cycle_id, self.day, news, own, ranker, notes(self.results)
        )
        editions = Editions(builder)
        suppressed = store.suppressed()
        recipients: list[tuple] = []
        for reader in roll(settings, store):
            if not isinstance(reader, Reader):
                self.bad_rows.append(str(reader))
                continue
            if reader.key not in suppressed:  # counted as the list is read: read once a cycle
                paused = reader.paused_until is not None and self.day < reader.paused_until
                self.listed["paused" if paused else "active"] += 1
            if not (reader.topics or reader.own) or reader.key in suppressed:
                continue
            decision = due(reader, self.day)
            if not decision.mail:
                if decision.covered:
                    self.covered.append(reader.key)
                continue
            if reader.chosen:
                self.sent.append(reader.key)
            if (edition_id := editions.edition_for(reader, decision)) is None:
                continue
            self.planned += 1
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
        self.editions = editions.count
