"""👍 / 👎 by a signed vote link: GET shows one button (mail scanners open links), POST records.

A vote link (`/feedback/<up|down>/<id.vN.signature>/<arXiv id>`) records one person's vote on
one paper, nothing else; its form posts back a form token bound to the person, and its Origin
is checked, as on the manage page. The manage page lists the votes, each with an Undo button.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..models import Paper
from ..store import Store
from ..tokens import PAPER_ID, VOTES, VoteToken, check_form_token, form_token
from .base import Endpoint, mask, same_origin
from .preferences import Current, Preferences

log = logging.getLogger(__name__)

FORM = "feedback"  # the purpose of the vote page's form token
LABELS = {"up": ("👍", "More like this"), "down": ("👎", "Less like this")}


class Feedback:
    """The vote page of a vote link, the vote itself, and Undo on the manage page."""

    def __init__(self, endpoint: Endpoint, preferences: Preferences):
        self.endpoint = endpoint
        self.signed = endpoint.signed  # the one way from a token to a person
        self.preferences = preferences  # the manage page: its form token, its refusals

    def routes(self) -> list[web.RouteDef]:
        """Return the routes this module answers."""
        link = "/feedback/{vote}/{token}/{paper:.+}"
        return [
            web.get(link, self.show),
            web.post(link, self.record),
            # Any other address under /feedback: a link cut short, or altered.
            web.route("*", "/feedback{rest:.*}", self.refused),
            # One path segment, as /manage's: the manage page it answers links relatively.
            web.post("/unvote", self.undo),
        ]

    def _page(self, link: VoteToken, email: str, paper: Paper, **state: Any) -> web.Response:
        emoji, label = LABELS[link.vote]
        return self.endpoint.page(
            "feedback",
            **{
                "masked": mask(email),
                "paper": paper,
                "vote": link.vote,
                "emoji": emoji,
                "label": label,
                "csrf": form_token(self.endpoint.secret, FORM, link.id),
                "recorded": False,
                "undone": False,
                "other": None,
                **state,
            },
        )

    async def refused(self, request: web.Request) -> web.Response:
        """Answer an address under /feedback that is no vote link: the bad link's page."""
        return self.preferences.links.refused()

    async def show(self, request: web.Request) -> web.Response:
        """GET a vote link: the paper and one button; a GET never records (scanners open links)."""
        link = self.signed.parse_vote(request)
        if link is None:
            return self.preferences.links.refused()

        def load(store: Store) -> tuple[str, Paper, int | None] | None:
            email = self.signed.voter(store, link)
            paper = store.papers([link.paper]).get(link.paper) if email else None
            if email is None or paper is None:
                return None
            return email, paper, store.vote_on(email, link.paper)

        found = await self.endpoint.read(load)
        if found is None:
            return self.preferences.links.refused()
        email, paper, current = found
        if current == VOTES[link.vote]:
            return self._page(link, email, paper, recorded=True)
        other = next((LABELS[w][1] for w, v in VOTES.items() if v == current), None)
        return self._page(link, email, paper, other=other)

    async def record(self, request: web.Request) -> web.Response:
        """POST a vote link (its page's form): record the vote (`undo=1`: take it back);
        repeating it is harmless."""
        form = await request.post()
        link = self.signed.parse_vote(request)
        if link is None:
            return self.preferences.links.refused()
        genuine = same_origin(request, self.endpoint.settings.base_url) and check_form_token(
            self.endpoint.secret, FORM, link.id, str(form.get("csrf", ""))
        )
        undo, value, now = form.get("undo") == "1", VOTES[link.vote], self.endpoint.clock()

        def write(store: Store) -> tuple[int, str | None, Paper | None]:
            email = self.signed.voter(store, link)
            paper = store.papers([link.paper]).get(link.paper) if email else None
            if email is None or paper is None:
                return 400, None, None
            if not genuine:
                return 403, None, None
            if undo:
                store.undo_vote(email, paper.id, value)
            else:
                store.record_vote(email, paper.id, value, now)
            return 200, email, paper

        status, email, paper = await self.endpoint.write(write)
        if email is None or paper is None:
            if status == 400:
                return self.preferences.links.refused()
            return self.endpoint.error_page(status)
        log.info("%s %s on %s by %s", "undid" if undo else "vote", link.vote, paper.id, mask(email))
        return self._page(link, email, paper, recorded=not undo, undone=undo)

    async def undo(self, request: web.Request) -> web.Response:
        """POST /unvote: the manage page's Undo of one vote, by its paper (a manage link)."""
        posted = await self.preferences.posted(request)
        if posted is None:
            return self.preferences.links.refused()
        link, form, genuine = posted
        paper_id = str(form.get("paper", ""))

        def undo(store: Store) -> tuple[int, Current | None, str | None]:
            signed = self.signed.person(store, link)
            if signed is None or not PAPER_ID.fullmatch(paper_id):
                return 400, None, None
            if not genuine:
                return 403, None, None
            paper = store.papers([paper_id]).get(paper_id)
            store.undo_vote(signed.email, paper_id)
            return 200, Current.of(store, signed), paper.title if paper else paper_id

        status, current, title = await self.endpoint.write(undo)
        if current is None:
            if status == 400:
                return self.preferences.links.refused()
            return self.endpoint.error_page(status)
        log.info("undid the vote on %s of %s", paper_id, mask(current.email))
        return self.preferences.page(current, link, undone=title)
