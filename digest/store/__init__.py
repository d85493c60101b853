"""The only owner of the SQLite database: history, outbox, suppressions, bounce reports."""

from .arrivals import Arrivals
from .backup import BadBackup, Snapshot
from .base import BOUNCE_LIMIT, SCHEMA, VERSION, StoreBusy, StoreError, iso
from .bounces import BounceFinding, Bounces, Effect
from .form_limits import FormLimits
from .history import History
from .links import LinkVersions
from .outbox import Edition, Message, Outbox, PlannedEdition
from .peek import peek_deleted, peek_meta
from .people import People, Person
from .posts import ChannelState, Post, Posts
from .relevance import Vocabulary
from .room_queries import Cycle, QueryTooLong, RoomQueries
from .sends import Sends
from .tallies import Counts, CycleRecord, FetchCost, MailCounts, Tallies
from .votes import Vote, VotedPaper, Votes

__all__ = [
    "BOUNCE_LIMIT",
    "SCHEMA",
    "VERSION",
    "BadBackup",
    "BounceFinding",
    "ChannelState",
    "Counts",
    "Cycle",
    "CycleRecord",
    "Edition",
    "Effect",
    "FetchCost",
    "MailCounts",
    "Message",
    "Person",
    "PlannedEdition",
    "Post",
    "QueryTooLong",
    "Snapshot",
    "Store",
    "StoreBusy",
    "StoreError",
    "Vote",
    "VotedPaper",
    "iso",
    "peek_deleted",
    "peek_meta",
]


class Store(
    History,
    Arrivals,
    Outbox,
    RoomQueries,
    People,
    Bounces,
    Sends,
    FormLimits,
    LinkVersions,
    Posts,
    Tallies,
    Votes,
    Vocabulary,
):
    """The database of digest, the one place that speaks SQL."""
