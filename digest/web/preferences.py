"""A person's own page, by their signed link: topics (and their own), schedule, pause, abstracts,
their data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from ..numbers import whole_number
from ..presentation import ABSTRACTS, long_date
from ..readers import WEEKDAYS, has_row
from ..store import Store, VotedPaper
from ..store.people import Choices
from ..tokens import check_form_token, form_token
from . import own_topics
from .base import Endpoint, mask, same_origin
from .signed import Link, Signed
from .unsubscribe import Unsubscribing

log = logging.getLogger(__name__)

MAX_PAUSE = 365  # days
VOTES_SHOWN = 500  # the newest votes a person's pages list (each with Undo)


@dataclass(frozen=True)
class Current:
    """What the page shows: the person's choices, or their subscribers.csv row's."""

    email: str
    name: str
    source: str
    topics: tuple[str, ...]
    frequency: str
    weekday: int
    paused_until: date | None
    abstracts: str | None
    status: str
    sent: int
    last_sent: str | None
    own_topics: tuple[str, ...] = ()  # their own topic lines, as saved
    votes: tuple[VotedPaper, ...] = ()  # the newest VOTES_SHOWN, newest first
    liked: int = 0  # how many papers they voted 👍 (all of them)
    disliked: int = 0

    @classmethod
    def of(cls, store: Store, signed: Signed) -> Current:
        """Return the page's view of a person: their choices, status and digests sent."""
        reader, email = signed.reader, signed.email
        sent, last = store.sent_to(email)
        reason = store.suppression(email)
        person = store.person(email)
        counts = store.count_votes(email)
        return cls(
            email, reader.name, reader.source, reader.topics, reader.frequency,
            reader.weekday if reader.weekday is not None else 0,
            reader.paused_until, reader.abstracts,
            f"{reason[0]} since {reason[1]:%Y-%m-%d}" if reason else "active", sent, last,
            person.own_topics if person else (),
            tuple(store.voted_papers(email, VOTES_SHOWN)), counts[1], counts[-1],
        )  # fmt: skip


class Preferences:
    """GET shows the person's choices (and changes nothing); POST saves them."""

    def __init__(self, endpoint: Endpoint, links: Unsubscribing):
        self.endpoint = endpoint
        self.signed = endpoint.signed  # the one way from a token to a person
        self.links = links  # the refusal the unsubscribe pages give
        self.keywords = endpoint.settings.keywords
        self.own_on = endpoint.settings.web_personal_topics  # the own-topics box
        self.own_limit = endpoint.settings.web_max_personal_topics
        self.tries = own_topics.Tries()  # what each saved line found lately

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [
            web.get("/manage", self.show),
            web.post("/manage", self.save),
            web.get("/manage/data", self.data),
            web.post("/manage/delete", self.delete),
        ]

    def _current(self, store: Store, link: Link) -> Current | None:
        signed = self.signed.person(store, link)
        return Current.of(store, signed) if signed is not None else None

    async def _load(self, request: web.Request) -> tuple[Current, Link] | None:
        link = self.signed.parse(request)
        if link is None:
            return None
        current = await self.endpoint.read(lambda store: self._current(store, link))
        return (current, link) if current else None

    def _form(self, current: Current, link: Link, **extra: Any) -> dict[str, Any]:
        return {
            "current": current,
            "masked": mask(current.email),
            "token": link.token,
            "csrf": form_token(self.endpoint.secret, "manage", link.token_id),
            "keywords": self.keywords,
            "weekdays": WEEKDAYS,
            "abstracts": ABSTRACTS,
            "list_abstracts": self.endpoint.settings.abstracts,
            "long_date": long_date,
            "saved": False,
            "error": None,
            "undone": None,  # the title of a paper whose vote was undone
            "today": self._today(),
            # the dates read_choices() takes: a pause ends after today, within MAX_PAUSE days
            "first_pause_day": self._today() + timedelta(days=1),
            "last_pause_day": self._today() + timedelta(days=MAX_PAUSE),
            "own_on": self.own_on,
            "own": None,
            **extra,
        }

    def _tried(self, store: Store, current: Current | None) -> tuple[own_topics.LineFound, ...]:
        """Return what each of a person's saved own topics found lately (in a database thread)."""
        if current is None or not (self.own_on and current.own_topics):
            return ()
        return self.tries.run(store, current.own_topics, self.endpoint.clock())

    async def _found(self, current: Current) -> tuple[own_topics.LineFound, ...]:
        """Return what each saved own topic found, read on a read connection: never on the
        writer, whose turn an unsubscribe may be waiting for."""
        if not (self.own_on and current.own_topics):
            return ()
        return await self.endpoint.read(lambda store: self._tried(store, current))

    def _own(
        self,
        current: Current,
        found: tuple[own_topics.LineFound, ...],
        box: own_topics.OwnBox | None = None,
    ) -> own_topics.OwnSection | None:
        """Return the own-topics part of the page (None when the list has it off): the box as
        saved, or as sent when it was not (`box`), its mistakes, what each saved line found."""
        if not self.own_on:
            return None
        text = box.text if box is not None else "\n".join(current.own_topics)
        errors = box.errors if box is not None else ()
        return own_topics.OwnSection(text, self.own_limit, errors, found)

    def _today(self) -> date:
        return self.endpoint.clock().astimezone(self.endpoint.settings.timezone).date()

    def page(self, current: Current, link: Link, **extra: Any) -> web.Response:
        """Return the person's page (`extra`: saved, error or undone)."""
        return self.endpoint.page("manage", **self._form(current, link, **extra))

    async def show(self, request: web.Request) -> web.Response:
        """GET /manage: the person's choices in a form; a GET never changes anything."""
        link = self.signed.parse(request)
        if link is None:
            return self.links.refused()

        def load(store: Store) -> tuple[Current | None, tuple[own_topics.LineFound, ...]]:
            current = self._current(store, link)  # and what their own topics found: one call
            return current, self._tried(store, current)

        current, found = await self.endpoint.read(load)
        if current is None:
            return self.links.refused()
        return self.endpoint.page(
            "manage", **self._form(current, link, own=self._own(current, found))
        )

    async def posted(self, request: web.Request) -> tuple[Link, Any, bool] | None:
        """Return a POST's link, its form, and whether it comes from the person's own page
        (its Origin and its form token); None if it has no link that could be ours."""
        form = await request.post()
        link = self.signed.parse(request)
        if link is None:
            return None
        genuine = same_origin(request, self.endpoint.settings.base_url) and check_form_token(
            self.endpoint.secret, "manage", link.token_id, str(form.get("csrf", ""))
        )
        return link, form, genuine

    async def save(self, request: web.Request) -> web.Response:
        """POST /manage: check the choices and save them, in one database call."""
        posted = await self.posted(request)
        if posted is None:
            return self.links.refused()
        link, form, genuine = posted
        keys, today, now = [k.key for k in self.keywords], self._today(), self.endpoint.clock()
        box = own_topics.read_box(form, self.own_limit) if self.own_on else None

        def save(store: Store) -> tuple[int, Current | None, str | None]:
            signed = self.signed.person(store, link)
            if signed is None:
                return 400, None, None
            if not genuine:
                return 403, None, None
            choices, error = read_choices(form, keys, today)
            if error or (box is not None and box.errors):  # nothing of the form is saved
                return 400, Current.of(store, signed), error
            name, source = signed.reader.name, signed.reader.source
            with store.transaction():
                store.save_choices(signed.email, name, source, choices, now)
                if box is not None:
                    store.save_own_topics(signed.email, name, source, box.lines, now)
            reader = self.signed.reader(store, link, signed.email) or signed.reader
            return 200, Current.of(store, Signed(link, signed.email, reader)), None

        status, current, error = await self.endpoint.write(save)
        if current is None:
            return self.links.refused() if status == 400 else self.endpoint.error_page(status)
        found = await self._found(current)
        if status == 400:  # nothing saved: the box keeps what they wrote
            page = self._form(current, link, error=error, own=self._own(current, found, box))
            return self.endpoint.page("manage", status=400, **page)
        log.info("preferences saved for %s", mask(current.email))
        own = self._own(current, found)
        return self.endpoint.page("manage", **self._form(current, link, saved=True, own=own))

    async def data(self, request: web.Request) -> web.Response:
        """GET /manage/data: what is kept about the person, and a button to delete it."""
        loaded = await self._load(request)
        if loaded is None:
            return self.links.refused()
        return self.endpoint.page("manage_data", **self._form(*loaded))

    async def delete(self, request: web.Request) -> web.Response:
        """POST /manage/delete: delete what is kept, but the entry that keeps them from mail."""
        posted = await self.posted(request)
        if posted is None:
            return self.links.refused()
        link, _, genuine = posted
        now = self.endpoint.clock()

        def delete(store: Store) -> tuple[int, str | None, bool]:
            signed = self.signed.person(store, link)
            if signed is None:
                return 400, None, False
            if not genuine:
                return 403, None, False
            email, listed = signed.email, has_row(self.endpoint.settings, signed.email)
            with store.transaction():  # one step: no link of theirs outlives their data
                store.forget(email, now)
                store.revoke_links(email, now)
            return 200, email, listed

        status, email, listed = await self.endpoint.write(delete)
        if email is None:
            return self.links.refused() if status == 400 else self.endpoint.error_page(status)
        log.info("deleted the data of %s at their request", mask(email))
        return self.endpoint.page("deleted", masked=mask(email), listed=listed)


def read_choices(form: Any, keys: list[str], today: date) -> tuple[Choices, str | None]:
    """Check a submitted form; return the choices, or the reason it cannot be saved."""
    topics = [k for k in form.getall("topic", []) if k in keys]
    if not topics:
        return {}, "Choose at least one topic (or unsubscribe below)."
    frequency = form.get("frequency", "daily")
    if frequency not in ("daily", "weekly"):
        return {}, "Choose daily or weekly."
    weekday = whole_number(form.get("weekday", "0"), digits=1)
    if weekday is None or weekday > 6:
        return {}, "Choose a day of the week."
    paused = None
    if raw := form.get("paused_until", "").strip():
        try:
            paused = date.fromisoformat(raw)
        except ValueError:
            return {}, "Write the end of the pause as a date, like 2026-12-24."
        if not today < paused <= today + timedelta(days=MAX_PAUSE):
            return {}, f"A pause ends after today and within {MAX_PAUSE} days."
    abstracts = form.get("abstracts") or None
    if abstracts is not None and abstracts not in ABSTRACTS:
        return {}, "Choose how much of each abstract to show."
    return {
        "topics": [k for k in keys if k in topics],
        "frequency": frequency,
        "weekday": weekday if frequency == "weekly" else None,
        "paused_until": paused,
        "abstracts": abstracts,
    }, None
