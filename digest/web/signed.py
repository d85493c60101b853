"""Signed links: the one way a request's token becomes an address, and the person behind it.

A link has a purpose. An unsubscribe link only unsubscribes (and undoes that), and never
expires. A manage link opens the person's page while its version is theirs now: signing out
(or deleting, or `digest subscribers --revoke`) raises the version. A link mailed before links
had purposes (one token for both) unsubscribes forever and opens the page until the person
first signs out (version 0). A vote link records one vote, on one paper, by one person: its
signature covers the three, and it carries the version of the person's links, like a manage
link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ..config import Settings
from ..readers import Reader, own_topics, reader
from ..store import Store
from ..tokens import (
    LEGACY,
    MANAGE,
    UNSUBSCRIBE,
    LinkToken,
    TokenError,
    VoteToken,
    read_link,
    read_vote,
    verify_link,
    verify_vote,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    """A request's signed link, parsed once: its token, the token's id, purpose and version."""

    token: str
    token_id: str
    purpose: str = LEGACY  # LEGACY, UNSUBSCRIBE or MANAGE
    version: int = 0  # a manage link's version

    @property
    def manages(self) -> bool:
        """Tell whether the link is meant to open the person's page (not an unsubscribe link)."""
        return self.purpose != UNSUBSCRIBE


@dataclass(frozen=True)
class Signed:
    """A signed link checked against the database: the address, and the person it is."""

    link: Link
    email: str
    reader: Reader


def mask(email: str) -> str:
    """Show an address without giving it away: 'a•••@example.org'."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


class SignedLinks:
    """Parse a request's token once; in the database thread, check it and find the person."""

    def __init__(self, settings: Settings, secret: Callable[[], bytes]):
        self.settings = settings
        self.secret = secret  # loaded when the app starts

    def parse(self, request: web.Request, name: str = "token") -> Link | None:
        """Return the request's ?token= (or another parameter) parsed, or None if it cannot
        be one of ours."""
        token = request.query.get(name) or ""
        try:
            read = read_link(token)
        except TokenError:
            return None
        return Link(token, read.id, read.purpose, read.version)

    def address(self, store: Store, link: Link) -> str | None:
        """Return the address a link may unsubscribe (or resubscribe), or None (run in a
        database thread): any genuine link but a manage link that was signed out."""
        email = self._genuine(store, link)
        if (
            email is not None
            and link.purpose == MANAGE
            and link.version != store.link_version(email)
        ):
            return None
        return email

    def manager(self, store: Store, link: Link) -> str | None:
        """Return the address whose page a link may open and change, or None: a manage link
        of the version their links have now, or an old-format link while that is still 0."""
        if not link.manages:
            return None
        email = self._genuine(store, link)
        if email is None or link.version != store.link_version(email):
            return None
        return email

    def _genuine(self, store: Store, link: Link) -> str | None:
        """Return the address a link's signature genuinely stands for, whatever its version."""
        email = store.recipient(link.token_id)
        try:
            return verify_link(
                self.secret(),
                LinkToken(link.token, link.token_id, link.purpose, link.version),
                email,
            )
        except TokenError:
            if email is not None:  # a link we mailed, its signature not this secret's
                log.warning(
                    "web: a link for %s has a signature the current secret did not make: "
                    "DIGEST_SECRET changed since it was mailed (or the link was altered)",
                    mask(email),
                )
            return None

    def parse_vote(self, request: web.Request) -> VoteToken | None:
        """Return the request's vote link (/feedback/<vote>/<token>/<paper>) read, or None if
        it cannot be one of ours: a link of another purpose never is."""
        path = request.match_info
        try:
            return read_vote(path.get("token"), path.get("paper"), path.get("vote"))
        except TokenError:
            return None

    def voter(self, store: Store, link: VoteToken) -> str | None:
        """Return the address whose vote a vote link may record, or None (run in a database
        thread): the link genuinely signs this person, paper and vote, at the version their
        links have now (signing out, or deleting their data, makes it fail as manage links)."""
        email = store.recipient(link.id)
        if email is None:
            return None
        try:
            verify_vote(self.secret(), link, email)
        except TokenError:
            log.info(
                "web: refused a vote link for %s: its signature does not match its paper and "
                "vote (altered, or signed with another DIGEST_SECRET)",
                mask(email),
            )
            return None
        return email if link.version == store.link_version(email) else None

    def person(self, store: Store, link: Link) -> Signed | None:
        """Return who a link may manage stands for, with their choices; None for any other."""
        email = self.manager(store, link)
        if email is None:
            return None
        reader = self.reader(store, link, email)
        return Signed(link, email, reader) if reader is not None else None

    def reader(self, store: Store, link: Link, email: str) -> Reader | None:
        """Return the person a checked link stands for: as the list has them now, else as
        they were last mailed (someone since taken off subscribers.csv keeps their page)."""
        return reader(self.settings, store, email) or self._as_mailed(store, link, email)

    def _as_mailed(self, store: Store, link: Link, email: str) -> Reader | None:
        details = store.recipient_details(link.token_id)
        if details is None:
            return None
        _, name, topics, source = details
        person = store.person(email)
        chosen = person.topics if person and person.topics is not None else topics
        keys = [k.key for k in self.settings.keywords]
        return Reader(
            email, name or (person.name if person else ""),
            tuple(k for k in keys if chosen is None or k in chosen),
            person.source if person else source,
            (person.frequency if person else None) or "daily",
            person.weekday if person else None,
            person.paused_until if person else None, person.abstracts if person else None,
            chosen=person is not None, own=own_topics(self.settings, person),
        )  # fmt: skip
