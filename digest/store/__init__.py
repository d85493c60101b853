"""The only owner of the SQLite database: history, outbox, suppressions, bounce reports."""

from .base import BOUNCE_LIMIT, SCHEMA, VERSION, StoreBusy, StoreError, iso
from .bounces import Bounces, Effect, Finding
from .history import History
from .outbox import Edition, Message, Outbox
from .peek import peek_meta
from .people import People, Person
from .reading import Cycle, Reading
from .sends import Sends

__all__ = [
    "BOUNCE_LIMIT",
    "SCHEMA",
    "VERSION",
    "Cycle",
    "Edition",
    "Effect",
    "Finding",
    "Message",
    "Person",
    "Store",
    "StoreBusy",
    "StoreError",
    "iso",
    "peek_meta",
]


class Store(History, Outbox, Reading, People, Bounces, Sends):
    """The database of digest, the one place that speaks SQL."""
