"""Sign-up with double opt-in: a form, one confirmation email a day, a link that confirms."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .. import signups
from ..addresses import checked_key
from ..mail import Email
from ..presentation import cadence
from ..readers import is_subscribed
from ..store import Store, StoreBusy, StoreError
from ..tokens import (
    TokenError,
    TokenExpired,
    check_form_ticket,
    check_form_token,
    form_ticket,
    form_token,
    mailbox_id,
    verify_confirm_token,
)
from .base import RETRY_AFTER, Endpoint, mask, same_origin
from .clients import client_network
from .mailer import Mailer

log = logging.getLogger(__name__)

TOO_FAST = 2.0  # seconds: a form sent back sooner after it was shown was filled in by a program
TOO_OLD = 86_400.0  # seconds: a form sent back later than this is shown again, fresh
PER_CLIENT = 5  # sign-ups one client network (/24, /64) may send per hour (in memory)
CLIENTS = 10_000  # client networks remembered at most; the longest quiet are forgotten
# What can go wrong, each with its page (templates/web/signup_problem.html), by its status.
BACKGROUND_WAIT = 10.0  # seconds storing a sign-up waits for the database (no one waits on it)
PROBLEMS = {"refused": 403, "limit": 429, "busy": 503, "expired": 410, "invalid": 400}


class Limiter:
    """Allow each client network a few sign-ups per rolling hour."""

    def __init__(self, per_hour: int, size: int = CLIENTS):
        self.per_hour = per_hour
        self.size = size
        self.seen: OrderedDict[str, deque[float]] = OrderedDict()

    def admit(self, client: str, now: float) -> bool:
        """Count a sign-up from a client; return False if it is over the limit."""
        times = self.seen.pop(client, None) or deque()
        while times and times[0] <= now - 3600:
            times.popleft()
        allowed = len(times) < self.per_hour
        if allowed:
            times.append(now)
        self.seen[client] = times
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return allowed


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class Signup:
    """The sign-up form, its one email sent in the background, and the confirmation link."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.settings = endpoint.settings
        self.limiter = Limiter(PER_CLIENT)
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()  # one check-then-store at a time: one email a day at most
        self.mailer = Mailer(endpoint, self._compose)
        self.capped_logged = -float("inf")  # when [web] signup_hourly_cap was last logged

    def install(self, app: web.Application) -> None:
        """Answer the sign-up routes; let emails being sent finish when the app stops."""
        app[SIGNUP] = self
        app.add_routes([web.get("/subscribe", self.form), web.post("/subscribe", self.subscribe)])
        app.add_routes([web.get("/confirm", self.confirm_page), web.post("/confirm", self.confirm)])
        smtp = self.settings.smtp
        wait = (smtp.timeout if smtp else 5.0) * 2
        app.on_startup.append(
            lambda app: self.mailer.resume()
        )  # emails kept waiting before a restart
        app.on_cleanup.append(lambda app: self.idle(wait))
        app.on_cleanup.append(lambda app: self.mailer.close(wait))

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until every email is sent or has failed, but those waiting for the hourly
        limit."""
        while self.tasks:
            done, _ = await asyncio.wait(set(self.tasks), timeout=timeout)
            if not done:
                for task in self.tasks:
                    task.cancel()
                return
        await self.mailer.idle(timeout)

    def problem(self, key: str) -> web.Response:
        """Return the friendly page of something that went wrong."""
        response = self.endpoint.page("signup_problem", status=PROBLEMS[key], problem=key)
        if key == "limit":
            response.headers["Retry-After"] = "3600"
        if key == "busy":
            response.headers["Retry-After"] = RETRY_AFTER
        return response

    # --- the form --------------------------------------------------------------------------

    async def form(self, request: web.Request) -> web.Response:
        """GET /subscribe: the form, its topics unchecked (checked if the list has one)."""
        keywords = self.settings.keywords
        return await self._form("", "", [k.key for k in keywords] if len(keywords) == 1 else [])

    async def _form(
        self,
        email: str,
        name: str,
        chosen: Sequence[str],
        issued: str = "",
        problem: tuple[str, str] | None = None,
    ) -> web.Response:
        issued = issued or str(int(self.endpoint.clock().timestamp()))
        field, text = problem or ("", "")
        return self.endpoint.page(
            "subscribe",
            status=400 if problem else 200,
            keywords=self.settings.keywords,
            email=email,
            your_name=name,
            chosen=set(chosen),
            field=field,
            problem=text,
            issued=issued,
            form=form_ticket(self.endpoint.secret, "signup", issued),
            cadence=cadence(self.settings.send_at, self.settings.timezone.key),  # daily
        )

    async def subscribe(self, request: web.Request) -> web.Response:
        """POST /subscribe: the same answer for a known, unknown or automated sign-up."""
        data = await request.post()
        issued = _text(data.get("issued"))
        ticket = check_form_ticket(self.endpoint.secret, "signup", issued, _text(data.get("form")))
        if not (ticket and same_origin(request, self.settings.base_url)):
            log.debug("web: refused a sign-up form from another site or without its token")
            return self.problem("refused")
        email = _text(data.get("email")).strip()
        name = "".join(c for c in _text(data.get("name")) if c.isprintable()).strip()[:100]
        wanted = set(data.getall("topic", []))
        topics = [k.key for k in self.settings.keywords if k.key in wanted]
        now = self.endpoint.clock().timestamp()
        if now - int(issued) > TOO_OLD:  # a tab left open (a number: the token signs it)
            text = "This form was open for more than a day: please check it and send it again."
            return await self._form(email, name, topics, "", ("email", text))
        try:  # a cycle holding the database: say so now, rather than lose the sign-up
            fresh, queued = await self.endpoint.write(
                lambda store: self._use(store, ticket, int(issued) + TOO_OLD, now)
            )
        except StoreBusy:
            return self.problem("busy")
        if not fresh:  # each form shown is sent once: a replay gets the form, never an email
            log.info("web: a sign-up form was sent again with a used token; nothing sent")
            text = "This form was sent already. To sign up again, check it and send it once more."
            return await self._form(email, name, topics, "", ("email", text))
        try:
            checked_key(email)  # at most 254 characters, too
        except ValueError:
            text = "Please enter a whole email address, such as ada@example.org."
            return await self._form(email, name, topics, issued, ("email", text))
        if not topics:
            text = "Please choose at least one topic."
            return await self._form(email, name, topics, issued, ("topics", text))
        network = client_network(request, self.settings.web_trusted_proxies)
        if not self.limiter.admit(network, now):
            log.debug("web: over %d sign-ups an hour from one network; answered 429", PER_CLIENT)
            return self.problem("limit")
        reason = self._automated(_text(data.get("website")), issued)
        if reason:
            log.info("web: a sign-up looked automated (%s); nothing stored or sent", reason)
        else:
            self._start(self._sign_up(email, name, topics))
        hours = signups.VALID_FOR // timedelta(hours=1)
        return self.endpoint.page("signup_sent", hours=hours, queued=queued)

    def _use(self, store: Store, ticket: str, expires: float, now: float) -> tuple[bool, bool]:
        """Record a form's token as used (StoreBusy if a cycle holds the write lock); return
        whether it was fresh, and whether an email asked for now would wait for the hourly
        limit (the same for every address)."""
        with store.transaction():
            fresh = store.use_form_token(
                ticket, datetime.fromtimestamp(expires, UTC), datetime.fromtimestamp(now, UTC)
            )
            return fresh, self.mailer.queued(store, now)

    def _automated(self, honeypot: str, issued: str) -> str | None:
        """Say why a sign-up looks filled in by a program, or return None."""
        if honeypot:
            return "the hidden field was filled in"
        age = self.endpoint.clock().timestamp() - int(issued)  # a number: the form token signs it
        if age < TOO_FAST:
            return f"sent {max(age, 0):.1f} s after the form was shown"
        return None

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("web: a sign-up failed: %s", error, exc_info=error)

    async def _sign_up(self, email: str, name: str, topics: list[str]) -> None:
        """Store a sign-up and send its one email, unless its mailbox is over a limit."""
        now, nonce = self.endpoint.clock(), secrets.token_urlsafe(16)
        mailbox = mailbox_id(self.endpoint.secret, email)
        try:
            async with self.lock:
                why_not, known = await self.endpoint.write(
                    lambda store: signups.record_signup(
                        store, self.settings, mailbox, nonce, email, name, topics, now
                    ),
                    BACKGROUND_WAIT,
                )
        except StoreError as exc:
            log.warning("web: sign-up of %s not stored (%s); nothing sent", mask(email), exc)
            return
        if why_not == signups.RECENT:
            log.info("web: %s had an email from the sign-up form within a day", mask(email))
        elif why_not == signups.LEFT:
            log.info(
                "web: %s asked for no more mail (unsubscribed, deleted or complained); the "
                "sign-up form sends it at most one email in %d days, none in the first",
                mask(email),
                signups.QUIET.days,
            )
        elif why_not == signups.CAPPED:
            self._capped(now.timestamp())
        else:
            kind = "subscribed note" if known else "confirmation"
            await self.mailer.add(nonce, kind, mask(email))

    def _capped(self, now: float) -> None:
        """Log, once an hour at most, that [web] signup_hourly_cap holds back sign-up emails."""
        if now - self.capped_logged < 3600:
            return
        self.capped_logged = now
        log.warning(
            "web: [web] signup_hourly_cap (%d) reached: sign-ups get no email until the hour "
            "has room, their page answers as usual (said once an hour)",
            self.settings.web_signup_hourly_cap,
        )

    def _compose(self, store: Store, nonce: str) -> Email | None:
        """Compose a sign-up's email when its turn comes; None if the sign-up is gone."""
        found = store.notice_signup(nonce)
        if found is None:
            return None
        email, _name, topics, created = found  # the name waits for confirmation
        email = signups.addressee(self.settings, store, email)  # as the list has it
        known = is_subscribed(self.settings, store, email)
        env, secret = self.endpoint.renderer.env, self.endpoint.secret
        version = store.link_version(email)  # their manage link must be of the version now
        return signups.signup_email(
            self.settings, env, secret, nonce, email, topics, created, known, version
        )

    # --- the confirmation link ---------------------------------------------------------------

    async def _nonce(self, request: web.Request) -> tuple[str, web.Response | None]:
        """Return the sign-up a link stands for, or the page answering a bad or old link."""
        try:
            token = request.query.get("token")
            return verify_confirm_token(self.endpoint.secret, token, self.endpoint.clock()), None
        except TokenExpired:
            return "", self.problem("expired")
        except TokenError:
            return "", self.problem("invalid")

    async def confirm_page(self, request: web.Request) -> web.Response:
        """GET /confirm: show a button; never confirm (mail scanners open links)."""
        nonce, refused = await self._nonce(request)
        if refused is not None:
            return refused

        def look(store: Store) -> tuple[str, bool, list[str]] | None:
            state = store.signup_state(nonce)
            if state is None:
                return None
            return state[0], state[1], self._topics(store, state[0]) if state[1] else []

        found = await self.endpoint.read(look)
        if found is None:
            return self.problem("invalid")
        email, confirmed, topics = found
        if confirmed:
            return self._confirmed(email, True, topics)
        return self.endpoint.page(
            "signup_confirm",
            masked=mask(email),
            token=request.query["token"],
            form=form_token(self.endpoint.secret, "confirm", nonce),
        )

    async def confirm(self, request: web.Request) -> web.Response:
        """POST /confirm: the person gets digests from the next cycle on; repeating is harmless."""
        data = await request.post()
        nonce, refused = await self._nonce(request)
        if refused is not None:
            return refused
        genuine = check_form_token(self.endpoint.secret, "confirm", nonce, _text(data.get("form")))
        if not (genuine and same_origin(request, self.settings.base_url)):
            log.debug("web: refused a confirmation from another site or without its token")
            return self.problem("refused")
        now = self.endpoint.clock()

        def confirm(store: Store) -> tuple[str | None, bool, list[str]]:
            email, already = store.confirm_signup(nonce, now), False
            if email is None:
                state = store.signup_state(nonce)  # None: pruned, or forgotten on request
                if not (state and state[1]):
                    return None, False, []
                email, already = state[0], True
            return email, already, self._topics(store, email)

        try:
            email, already, topics = await self.endpoint.write(confirm)
        except StoreBusy:
            return self.problem("busy")
        if email is None:
            return self.problem("invalid")
        if not already:
            log.info("web: %s confirmed their sign-up", mask(email))
        return self._confirmed(email, already, topics)

    def _topics(self, store: Store, email: str) -> list[str]:
        """Return the names of the topics a person follows (by their own choices)."""
        person = store.person(email)
        chosen = set(person.topics or ()) if person else set()
        return [k.name for k in self.settings.keywords if k.key in chosen]

    def _confirmed(self, email: str, already: bool, topics: list[str]) -> web.Response:
        """Return the page of a confirmed sign-up, naming its topics."""
        return self.endpoint.page(
            "signup_confirmed",
            masked=mask(email),
            already=already,
            topics=topics,
            send_at=f"{self.settings.send_at:%H:%M}",
            timezone=self.settings.timezone.key,
        )


SIGNUP = web.AppKey("signup", Signup)
