"""A person's own page, by their signed link: topics, schedule, pause, abstracts, their data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from ..audience import WEEKDAYS
from ..presentation import ABSTRACTS, long_date
from ..store import Store
from ..store.people import Choices
from ..tokens import check_form_token, form_token, parse_token
from .base import Endpoint, mask, same_origin
from .unsubscribe import Unsubscribing

log = logging.getLogger(__name__)

MAX_PAUSE = 365  # days


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


class Preferences:
    """GET shows the person's choices (and changes nothing); POST saves them."""

    def __init__(self, endpoint: Endpoint, links: Unsubscribing):
        self.endpoint = endpoint
        self.links = links  # the token check the unsubscribe pages use
        self.keywords = endpoint.settings.keywords

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        return [
            web.get("/manage", self.show),
            web.post("/manage", self.save),
            web.get("/manage/data", self.data),
            web.post("/manage/delete", self.delete),
        ]

    def _current(self, store: Store, token: str) -> Current | None:
        details = store.recipient_details(parse_token(token))
        if details is None:
            return None
        email, name, topics, source = details
        person = store.person(email)
        chosen = person.topics if person and person.topics is not None else topics
        keys = [k.key for k in self.keywords]
        sent, last = store.sent_to(email)
        reason = store.suppression(email)
        return Current(
            email, name or (person.name if person else ""), person.source if person else source,
            tuple(k for k in keys if chosen is None or k in chosen),
            (person.frequency if person else None) or "daily",
            person.weekday if person and person.weekday is not None else 0,
            person.paused_until if person else None, person.abstracts if person else None,
            f"{reason[0]} since {reason[1]:%Y-%m-%d}" if reason else "active", sent, last,
        )  # fmt: skip

    async def _load(self, request: web.Request) -> tuple[Current, str] | None:
        if await self.links.address(request) is None:
            return None
        token = request.query["token"]
        current = await self.endpoint.db(lambda store: self._current(store, token))
        return (current, token) if current else None

    def _form(self, current: Current, token: str, **extra: Any) -> dict[str, Any]:
        secret = self.endpoint.secret or b""
        return {
            "current": current,
            "masked": mask(current.email),
            "token": token,
            "csrf": form_token(secret, "manage", parse_token(token)),
            "keywords": self.keywords,
            "weekdays": WEEKDAYS,
            "abstracts": ABSTRACTS,
            "list_abstracts": self.endpoint.settings.abstracts,
            "long_date": long_date,
            "saved": False,
            "error": None,
            "today": self.endpoint.clock().astimezone(self.endpoint.settings.timezone).date(),
            **extra,
        }

    async def show(self, request: web.Request) -> web.Response:
        """GET /manage: the person's choices in a form; a GET never changes anything."""
        loaded = await self._load(request)
        if loaded is None:
            return self.links.refused()
        return self.endpoint.page("manage", **self._form(*loaded))

    def _guarded(self, request: web.Request, token: str, form: Any) -> bool:
        """Tell whether a POST comes from the page itself: its Origin and its form token."""
        secret = self.endpoint.secret or b""
        return same_origin(request, self.endpoint.settings.base_url) and check_form_token(
            secret, "manage", parse_token(token), form.get("csrf")
        )

    async def _posted(self, request: web.Request) -> tuple[Current, str, Any] | web.Response:
        """Return the person and the form of a POST from their own page, or its refusal."""
        form = await request.post()
        loaded = await self._load(request)
        if loaded is None:
            return self.links.refused()
        if not self._guarded(request, loaded[1], form):
            return self.endpoint.error_page(403)
        return (*loaded, form)

    async def save(self, request: web.Request) -> web.Response:
        """POST /manage: save the person's choices (checked, then stored)."""
        posted = await self._posted(request)
        if isinstance(posted, web.Response):
            return posted
        current, token, form = posted
        today = self.endpoint.clock().astimezone(self.endpoint.settings.timezone).date()
        choices, error = read_choices(form, [k.key for k in self.keywords], today)
        if error:
            page = self._form(current, token, error=error)
            return self.endpoint.page("manage", status=400, **page)
        now = self.endpoint.clock()
        await self.endpoint.db(
            lambda store: store.save_choices(
                current.email, current.name, current.source, choices, now
            )
        )
        log.info("preferences saved for %s", mask(current.email))
        saved = await self.endpoint.db(lambda store: self._current(store, token))
        return self.endpoint.page("manage", **self._form(saved, token, saved=True))

    async def data(self, request: web.Request) -> web.Response:
        """GET /manage/data: what is kept about the person, and a button to delete it."""
        loaded = await self._load(request)
        if loaded is None:
            return self.links.refused()
        return self.endpoint.page("manage_data", **self._form(*loaded))

    async def delete(self, request: web.Request) -> web.Response:
        """POST /manage/delete: delete what is kept, but the entry that keeps them from mail."""
        posted = await self._posted(request)
        if isinstance(posted, web.Response):
            return posted
        current = posted[0]
        now = self.endpoint.clock()
        await self.endpoint.db(lambda store: store.forget(current.email, now))
        log.info("deleted the data of %s at their request", mask(current.email))
        return self.endpoint.page("deleted", masked=mask(current.email))


def read_choices(form: Any, keys: list[str], today: date) -> tuple[Choices, str | None]:
    """Check a submitted form; return the choices, or the reason it cannot be saved."""
    topics = [k for k in form.getall("topic", []) if k in keys]
    if not topics:
        return {}, "Choose at least one topic (or unsubscribe below)."
    frequency = form.get("frequency", "daily")
    if frequency not in ("daily", "weekly"):
        return {}, "Choose daily or weekly."
    weekday = form.get("weekday", "0")
    if not (weekday.isdigit() and int(weekday) < 7):
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
        "weekday": int(weekday) if frequency == "weekly" else None,
        "paused_until": paused,
        "abstracts": abstracts,
    }, None
