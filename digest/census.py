"""What a cycle records for the operator's view: each keyword's fetch cost and news, and the
list counted by status (the census) once a day."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from .config import Settings, is_harvest
from .models import KeywordResult
from .readers import roll
from .store import Store, StoreError
from .subscribers import BadRow, SubscribersError

log = logging.getLogger(__name__)

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


def count_list(settings: Settings, store: Store, now: datetime) -> dict[str, int]:
    """Count everyone by status: as `digest subscribers` lists them, and the sign-ups that wait
    for their confirmation."""
    today = now.astimezone(settings.timezone).date()
    counts = dict.fromkeys(STATUSES, 0)
    suppressed = store.suppressions()  # by address key
    listed = set()
    for entry in roll(settings, store, quiet=True):  # the cycle logged its bad rows already
        if isinstance(entry, BadRow):
            counts["invalid"] += 1
            continue
        listed.add(entry.key)
        gone = suppressed.get(entry.key)
        paused = entry.paused_until is not None and today < entry.paused_until
        status = gone[0] if gone else "paused" if paused else "active"
        counts[status] = counts.get(status, 0) + 1
    for key, (reason, _) in suppressed.items():
        if key not in listed:  # unsubscribed, bounced or deleted, and off the file since
            counts[reason] = counts.get(reason, 0) + 1
    counts["pending"] = store.pending_signups(now - timedelta(days=PENDING_DAYS))
    return counts


def take_census(settings: Settings, store: Store, now: datetime) -> date | None:
    """Record today's census; a file or database that cannot be read is logged, never fatal
    (the cycle goes on). Return the day recorded, or None."""
    day = now.astimezone(settings.timezone).date()
    try:
        store.record_census(day, count_list(settings, store, now))
    except (SubscribersError, StoreError) as exc:
        log.warning("census: the list was not counted today: %s", exc)
        return None
    return day
