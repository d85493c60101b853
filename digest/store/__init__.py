"""The only owner of the SQLite database: history, outbox, suppressions, bounce reports."""

from .base import BOUNCE_LIMIT, SCHEMA, VERSION, StoreBusy, StoreError, iso
from .bounces import BounceFinding, Bounces, Effect
from .form_limits import FormLimits
from .history import History
from .links import LinkVersions
from .outbox import Edition, Message, Outbox
from .peek import peek_deleted, peek_meta
from .people import People, Person
from .room_queries import Cycle, QueryTooLong, RoomQueries
from .sends import Sends
from .votes import Vote, VotedPaper, Votes

__all__ = [
    "BOUNCE_LIMIT",
    "SCHEMA",
    "VERSION",
    "BounceFinding",
    "Cycle",
    "Edition",
    "Effect",
    "Message",
    "Person",
    "QueryTooLong",
    "Store",
    "StoreBusy",
    "StoreError",
    "Vote",
    "VotedPaper",
    "iso",
    "peek_deleted",
    "peek_meta",
]


class Store(History, Outbox, RoomQueries, People, Bounces, Sends, FormLimits, LinkVersions, Votes):
    """The database of digest, the one place that speaks SQL."""
