"""The only owner of the SQLite database: history, outbox, suppressions."""

from .base import BOUNCE_LIMIT, SCHEMA, VERSION, StoreBusy, StoreError, iso
from .history import History
from .outbox import Edition, Message, Outbox
from .people import People, Person
from .reading import Cycle, Reading

__all__ = [
    "BOUNCE_LIMIT",
    "SCHEMA",
    "VERSION",
    "Cycle",
    "Edition",
    "Message",
    "Person",
    "Store",
    "StoreBusy",
    "StoreError",
    "iso",
]


class Store(History, Outbox, Reading, People):
    """The database of digest, the one place that speaks SQL."""
