"""Sign-ups from the web: keep one, and build its one email (a confirmation, or a note)."""

from __future__ import annotations

from datetime import datetime, timedelta

import jinja2

from .config import Settings
from .links import Links
from .mail import Email, greeting, render_email
from .presentation import long_date
from .readers import is_subscribed
from .store import Store

VALID_FOR = timedelta(hours=48)  # a confirmation link's life
ONCE_PER = timedelta(hours=24)  # at most one email from the sign-up form per address


def record_signup(
    store: Store,
    settings: Settings,
    nonce: str,
    email: str,
    name: str,
    topics: list[str],
    now: datetime,
) -> bool | None:
    """Keep a sign-up; return whether its address is subscribed already, or None (and keep
    nothing) if the address had an email from the sign-up form within ONCE_PER."""
    store.prune_signups(now)
    if store.recent_signups(email, now - ONCE_PER):
        return None
    known = is_subscribed(settings, store, email)
    store.add_signup(nonce, email, name, topics, now)
    return known


def confirmation_context(
    settings: Settings,
    secret: bytes,
    nonce: str,
    email: str,
    name: str,
    topics: list[str],
    now: datetime,
    known: bool,
    version: int = 0,
) -> dict[str, object]:
    """Return what templates/email/confirm.* show: the confirmation link, or for someone
    subscribed already (`known`) the links to their preferences (`version`: of their links)."""
    expires = (now + VALID_FOR).astimezone(settings.timezone)
    links = Links(settings.base_url, secret)
    return {
        "list_name": settings.name,
        "greeting": greeting(name),
        "email": email,
        "topics": [k.name for k in settings.keywords if k.key in topics],
        "known": known,
        "hours": VALID_FOR // timedelta(hours=1),
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
    name: str,
    topics: list[str],
    now: datetime,
    known: bool,
    version: int = 0,
) -> Email:
    """Render a sign-up's confirmation email, or the note to someone subscribed already."""
    context = confirmation_context(
        settings, secret, nonce, email, name, topics, now, known, version
    )
    kind = "subscribed note" if known else "confirmation"
    return render_email(env, "confirm", email, name, kind, context)
