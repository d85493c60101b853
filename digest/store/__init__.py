"""The only owner of the SQLite database: history, outbox, suppressions."""

from .base import BOUNCE_LIMIT, SCHEMA, VERSION, StoreBusy, StoreError, iso
from .history import History
from .outbox import Edition, Message, Outbox

__all__ = [
    "BOUNCE_LIMIT",
    "SCHEMA",
    "VERSION",
    "Edition",
    "Message",
    "Store",
    "StoreBusy",
    "StoreError",
    "iso",
]


class Store(History, Outbox):
    """The database of digest, the one place that speaks SQL."""
