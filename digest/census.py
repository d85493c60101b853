"""What a cycle records for the operator's view: each keyword's fetch cost and news, and the
list counted by status (the census) once a day, from what planning read (the list is read once
a cycle)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from .config import Settings, is_harvest
from .models import KeywordResult
from .store import Store

# Every status the census counts, in the order the dashboard shows them: each is recorded
# every day (zeros too), so that each status has one point per day.
STATUSES = (
    "active", "paused", "pending", "unsubscribed", "bounced", "complaint", "deleted", "invalid",
)  # fmt: skip
PENDING_DAYS = 7  # an unconfirmed sign-up is kept this long (Store.prune_signups)


def fetch_rows(results: Sequence[KeywordResult], stopped: bool) -> list[dict[str, Any]]:
    """Return what each keyword's fetch cost, as the store records it (a keyword not fetched
    because the cycle was asked to stop did not fail)."""
    return [
        {
            "keyword": result.keyword.casefold(),  # the keyword's key (config.Keyword.key)
            "requests": result.requests,
            "retries": result.retries,
            "failed": result.failed and not stopped,
            "papers": result.fetched,
        }
        for result in results
    ]


def news_counts(results: Sequence[KeywordResult]) -> dict[str, int]:
    """Return how many papers were news of each topic (a harvest entry's are never news)."""
    found = {}
    for result in results:
        key = result.keyword.casefold()
        found[key] = 0 if is_harvest(key) else len(result.new)
    return found


def count_list(
    store: Store, listed: Mapping[str, int], invalid: int, now: datetime
) -> dict[str, int]:
    """Count everyone by status, as `digest subscribers` lists them: the readers planning found
    on the list (`listed`: active, paused; `invalid`: rows that cannot be read), everyone on the
    suppression list by its reason, and the sign-ups that wait for their confirmation."""
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(listed)
    for reason, count in store.suppression_counts().items():
        counts[reason] = counts.get(reason, 0) + count
    counts["invalid"] = invalid
    counts["pending"] = store.pending_signups(now - timedelta(days=PENDING_DAYS))
    return counts


def take_census(
    settings: Settings, store: Store, listed: Mapping[str, int], invalid: int, now: datetime
) -> date:
    """Record today's census (the list's own day) and return its day."""
    day = now.astimezone(settings.timezone).date()
    store.record_census(day, count_list(store, listed, invalid, now))
    return day
