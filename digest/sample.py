"""A sample digest: the design, for any address, from papers already stored (nothing fetched)."""

from __future__ import annotations

import email as email_package
import email.policy as email_policy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage

from .config import Settings
from .delivery import Delivery
from .editions import EditionBuilder, Editions, NewsWindow
from .mail import new_message_id
from .readers import Due, Reader, reader
from .store import Message, Store

PER_TOPIC = 5  # papers of each topic in a sample: the newest stored
MADE_UP = "someone@example.org"  # the address of a sample for no one in particular


class NothingStored(Exception):
    """The database holds no paper of the topics a sample would show (no cycle ran yet)."""


@dataclass(frozen=True)
class Sample:
    """A sample digest, and whom it was rendered for as the list has them (None: nobody)."""

    message: EmailMessage
    reader: Reader | None


class SampleEditions(EditionBuilder):
    """Editions whose news is the stored papers given, none of them hidden as seen before."""

    def window(self, since: int | None) -> NewsWindow:
        """Return the sample's papers as this cycle's news."""
        ids = {i for ids in self.current.values() for i in ids}
        return NewsWindow(dict(self.current), {}, self.store.papers(ids), None)


def render_sample(
    settings: Settings,
    address: str | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Sample:
    """Render a digest for address (or a made-up one) from the newest stored papers of their
    topics (every topic for someone not on the list or following none), in their schedule's
    and abstracts' design; fetch, record and send nothing. Raise NothingStored if no paper is."""
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        found = reader(settings, store, address) if address else None
        person = Reader(address or MADE_UP, "", ()) if found is None else found
        if not person.topics:
            person = replace(person, topics=tuple(k.key for k in settings.keywords))
        new = {key: [p.id for p in store.recent_papers(key, PER_TOPIC)] for key in person.topics}
        if not any(new.values()):
            raise NothingStored(
                f"{settings.database} holds no paper of these topics yet: run a cycle first "
                "(digest once), then preview the sample"
            )
        with store.scratch():  # the cycle and edition it needs are rolled back
            now = clock()
            cycle_id = store.begin_cycle(now)
            day = now.astimezone(settings.timezone).date()
            builder = SampleEditions(settings, store, cycle_id, day, new)
            edition_id = Editions(builder).edition_for(person, Due(mail=True))
            if edition_id is None:  # every topic of theirs is empty: nothing to show
                raise NothingStored(f"{settings.database} holds no paper of these topics yet")
            assert isinstance(edition_id, int)  # no votes, no own topics: rendered now
            item = Message(
                0, cycle_id, edition_id, person.email, person.name,
                new_message_id(settings.sender), 0,
            )  # fmt: skip
            data = Delivery(settings, store, secret, clock).message(item)
    message = email_package.message_from_bytes(data, policy=email_policy.default)
    assert isinstance(message, EmailMessage)  # the default policy makes EmailMessages
    return Sample(message, found)
