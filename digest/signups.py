"""Sign-ups from the web: keep one, and build its one email (a confirmation, or a note)."""

from __future__ import annotations

from datetime import datetime, timedelta

import jinja2

from .config import Settings
from .links import Links
from .mail import Email, greeting, render_email
from .presentation import cadence, long_date
from .readers import is_subscribed, reader
from .store import Store

VALID_FOR = timedelta(hours=48)  # a confirmation link's life
ONCE_PER = timedelta(hours=24)  # at most one email from the sign-up form per mailbox
QUIET = timedelta(days=30)  # after unsubscribing or deleting: none, then one per QUIET at most
HOUR = timedelta(hours=1)  # [web] signup_hourly_cap counts the form's emails of a rolling hour
# Why a sign-up gets no email (the page says the same as for anyone): see record_signup.
RECENT, LEFT, CAPPED = "recent", "left", "capped"


def record_signup(
    store: Store,
    settings: Settings,
    mailbox: str,
    nonce: str,
    email: str,
    name: str,
    topics: list[str],
    now: datetime,
) -> tuple[str | None, bool]:
    """Keep a sign-up whose email may go: return (None, whether its address is subscribed
    already); or keep nothing and return why no email goes (RECENT, LEFT, CAPPED) and False.

    `mailbox` is the keyed identifier of the address's mailbox (tokens.mailbox_id): the
    limits count every spelling of one mailbox as one.
    """
    store.prune_signups(now)
    store.prune_form_mails(now - QUIET)
    # (recent_signups: the same address's sign-ups from before form_mails was kept)
    if store.form_mails(now - ONCE_PER, mailbox) or store.recent_signups(email, now - ONCE_PER):
        return RECENT, False
    left = store.left_at(email)
    if left is not None and (now - left < QUIET or store.form_mails(now - QUIET, mailbox)):
        return LEFT, False
    if store.form_mails(now - HOUR) >= settings.web_signup_hourly_cap:
        return CAPPED, False
    known = is_subscribed(settings, store, email)
    store.add_signup(nonce, email, name, topics, now)
    store.add_form_mail(mailbox, now)
    return None, known


def addressee(settings: Settings, store: Store, email: str) -> str:
    """Return where mail about an address's subscription goes: the address as the list keeps it
    (its subscribers.csv row, or what the database holds), never the spelling typed in the form."""
    listed = reader(settings, store, email)
    if listed is not None:
        return listed.email
    person = store.person(email)
    return person.email if person is not None else email


def confirmation_context(
    settings: Settings,
    secret: bytes,
    nonce: str,
    email: str,
    topics: list[str],
    now: datetime,
    known: bool,
    version: int = 0,
) -> dict[str, object]:
    """Return what templates/email/confirm.* show: the confirmation link, or for someone
    subscribed already (`known`) the links to their preferences (`version`: of their links).

    No name: anyone may type one, so it is used only once the address is confirmed.
    """
    expires = (now + VALID_FOR).astimezone(settings.timezone)
    links = Links(settings.base_url, secret)
    return {
        "list_name": settings.name,
        "greeting": greeting(""),
        "email": email,
        "topics": [k.name for k in settings.keywords if k.key in topics],
        "known": known,
        "hours": VALID_FOR // timedelta(hours=1),
        "cadence": cadence(settings.send_at, settings.timezone.key),  # a sign-up is daily
        "expires": f"{long_date(expires)}, {expires:%H:%M} ({settings.timezone.key})",
        "confirm_url": "" if known else links.confirm(nonce, now + VALID_FOR),
        "manage_url": links.manage(email, version),
        "unsubscribe_url": links.unsubscribe(email),
    }


def signup_email(
    settings: Settings,
    env: jinja2.Environment,
    secret: bytes,
    nonce: str,
    email: str,
    topics: list[str],
    now: datetime,
    known: bool,
    version: int = 0,
) -> Email:
    """Render a sign-up's confirmation email, or the note to someone subscribed already:
    to the bare address, greeting no one by name (the typed name waits for confirmation)."""
    context = confirmation_context(settings, secret, nonce, email, topics, now, known, version)
    kind = "subscribed note" if known else "confirmation"
    return render_email(env, "confirm", email, "", kind, context)
