"""GET /metrics: the list's numbers in Prometheus's exposition format (prometheus_client).

What cycles did is read from the database at each scrape, so the cycles of `digest once` run
from a timer count as much as the daemon's; the web process adds its own requests (by route
and status) and search times. Served to this machine (through no proxy) or with `[web]
metrics_token` as a Bearer token; to anyone else 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..config import Settings, is_harvest
from ..store import Counts
from .access import OperatorAccess, Verdict
from .base import Endpoint, Handler, is_local

# Cycles take seconds (a small list) to hours (a big one under an hourly limit).
CYCLE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
FETCH_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OUTCOMES = ("ok", "partial", "error", "interrupted", "crashed")  # how a cycle can end
UNMATCHED = "unmatched"  # the route label of a request no route answers (a 404, a 405)


def histogram(name: str, doc: str, values: Sequence[float], bounds: Sequence[float]) -> Metric:
    """Return a histogram family of values counted into cumulative buckets."""
    buckets = [(str(b), sum(1 for v in values if v <= b)) for b in bounds]
    buckets.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


def families(settings: Settings, counts: Counts) -> Iterator[Metric]:
    """Yield the metric families of the numbers the database holds."""
    cycles = CounterMetricFamily(
        "digest_cycles", "Cycles that ended, by how (ok, partial, error, interrupted, crashed).",
        labels=["outcome"],
    )  # fmt: skip
    for outcome in (*OUTCOMES, *sorted(set(counts.cycles) - {*OUTCOMES, "running"})):
        cycles.add_metric([outcome], counts.cycles.get(outcome, 0))
    yield cycles
    if counts.last_success is not None:
        yield GaugeMetricFamily(
            "digest_last_success_timestamp_seconds",
            "When the last cycle that ran to its end (ok or partial) finished, Unix time.",
            value=counts.last_success.timestamp(),
        )
    yield histogram(
        "digest_cycle_duration_seconds", "How long each finished cycle took.",
        counts.durations, CYCLE_BUCKETS,
    )  # fmt: skip
    yield histogram(
        "digest_fetch_duration_seconds", "How long each cycle's fetch from arXiv took.",
        counts.fetch_durations, FETCH_BUCKETS,
    )  # fmt: skip
    yield from _fetches(settings, counts)
    mails = counts.mails
    for name, value, doc in (
        ("sent", mails.sent, "Digests the relay accepted (or the Maildir took)."),
        ("failed", mails.failed, "Digests refused for good at sending (5xx, cannot compose)."),
        ("deferred", mails.deferred, "Tries of a digest put off by a transient refusal."),
        ("bounced", mails.bounced, "Bounce reports read from the bounce mailbox."),
        ("skipped", mails.skipped, "Digests taken out unsent: unsubscribed before their turn."),
    ):
        yield CounterMetricFamily(f"digest_mails_{name}", doc, value=value)
    yield GaugeMetricFamily(
        "digest_outbox_messages", "Digests planned and waiting to be sent.", value=mails.waiting
    )
    if counts.oldest_waiting is not None:
        yield GaugeMetricFamily(
            "digest_outbox_oldest_message_timestamp_seconds",
            "When the oldest digest still waiting was planned, Unix time.",
            value=counts.oldest_waiting.timestamp(),
        )
    yield from _posts(settings, counts)
    listed = GaugeMetricFamily(
        "digest_subscribers", "People on the list by status, as the last cycle counted them.",
        labels=["status"],
    )  # fmt: skip
    for status, count in sorted(counts.census.items()):
        listed.add_metric([status], count)
    yield listed


def _fetches(settings: Settings, counts: Counts) -> Iterable[Metric]:
    names = {k.key: k.name for k in settings.fetched_keywords}
    requests = CounterMetricFamily(
        "digest_arxiv_requests", "Requests sent to arXiv, retries included.", labels=["keyword"]
    )
    retries = CounterMetricFamily(
        "digest_arxiv_retries", "Requests sent to arXiv again after a transient failure.",
        labels=["keyword"],
    )  # fmt: skip
    failures = CounterMetricFamily(
        "digest_arxiv_failures", "Cycles in which a keyword could not be fetched.",
        labels=["keyword"],
    )  # fmt: skip
    new = CounterMetricFamily(
        "digest_papers_new", "Papers new to the readers of a topic.", labels=["topic"]
    )
    for key in sorted(counts.fetches, key=lambda k: (k not in names, k)):
        cost, label = counts.fetches[key], names.get(key, key)
        requests.add_metric([label], cost.requests)
        retries.add_metric([label], cost.retries)
        failures.add_metric([label], cost.failures)
        if not is_harvest(key):
            new.add_metric([label], cost.new)
    return requests, retries, failures, new


def _posts(settings: Settings, counts: Counts) -> Iterable[Metric]:
    names = {c.name.casefold(): c.name for c in settings.channels}
    posts = CounterMetricFamily(
        "digest_channel_posts", "Posts to the [[channels]] that went (posted) or were given up "
        "(dropped: the channel left the settings).", labels=["channel", "outcome"],
    )  # fmt: skip
    waiting = GaugeMetricFamily(
        "digest_channel_posts_waiting", "Posts waiting for their channel.", labels=["channel"]
    )
    for key, by_status in sorted(counts.posts.items()):
        label = names.get(key, key)
        posts.add_metric([label, "posted"], by_status.get("posted", 0))
        posts.add_metric([label, "dropped"], by_status.get("dropped", 0))
        waiting.add_metric([label], by_status.get("pending", 0))
    return posts, waiting


class StoreNumbers(Collector):
    """The families of the numbers read from the database for the scrape being answered."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.counts: Counts | None = None

    def collect(self) -> Iterable[Metric]:
        """Yield the families of the counts read for this scrape (none between scrapes)."""
        return families(self.settings, self.counts) if self.counts is not None else ()


def route_of(request: web.Request) -> str:
    """Return the route a request matched, as its pattern ('/topics/{slug}'): few values."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


class Metrics:
    """The /metrics route, and the middleware that counts every request of the web process."""

    def __init__(self, endpoint: Endpoint, access: OperatorAccess):
        self.endpoint = endpoint
        self.access = access
        self.registry = CollectorRegistry(auto_describe=False)  # the app's own, not the global
        self.requests = Counter(
            "digest_web_requests", "Requests the web endpoint answered, by route and status.",
            ["route", "status"], registry=self.registry,
        )  # fmt: skip
        self.search = Histogram(
            "digest_search_duration_seconds", "Time to answer a reading room search.",
            buckets=SEARCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.numbers = StoreNumbers(endpoint.settings)
        self.registry.register(self.numbers)

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [web.get("/metrics", self.serve)]

    @web.middleware
    async def count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count a request by its route and status; time the searches."""
        started, status = time.perf_counter(), 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect, passed on as it is
            status = exc.status
            raise
        finally:
            route = route_of(request)
            self.requests.labels(route, str(status)).inc()
            if route == "/search":
                self.search.observe(time.perf_counter() - started)

    async def serve(self, request: web.Request) -> web.Response:
        """GET /metrics: every number, or 403 to a client that may not see them."""
        # A request from this machine is answered at once; another host's token is not even
        # compared while its network (or everyone) has failed too often.
        if not is_local(request) and (wait := self.access.blocked(request)):
            return self.access.refuse(429, "Too many tries", "Wait a minute.", wait)
        verdict = self.access.metrics(request)
        if verdict is Verdict.WRONG:
            self.access.failed(request, "a wrong metrics token")
        if verdict is not Verdict.GOOD:
            return self.access.refuse(
                403, "Not for this client",
                "The metrics are served to this machine, or with [web] metrics_token.",
            )  # fmt: skip
        counts = await self.endpoint.read(lambda store: store.counts())
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        self.numbers.counts = counts  # read by the collector while encoding: no await between
        try:
            body = encoder(self.registry)
        finally:
            self.numbers.counts = None
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )
