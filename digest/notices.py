"""One-off emails from the web process: a sign-up's confirmation, composed and sent at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parseaddr

import jinja2

from .addresses import address_key, ascii_address
from .config import Settings
from .dkim import Signer, signed
from .mail import (
    Letter,
    MaildirTransport,
    SendError,
    SmtpConnection,
    Transport,
    address_line,
    alternative,
    greeting,
    header_line,
    new_message_id,
)
from .presentation import long_date
from .render import charset_first
from .store import Store
from .subscribers import Subscriber, SubscribersError, read_subscribers
from .tokens import make_confirm_token, make_token

log = logging.getLogger(__name__)

VALID_FOR = timedelta(hours=48)  # a confirmation link's life
ONCE_PER = timedelta(hours=24)  # at most one email from the sign-up form per address


@dataclass(frozen=True, slots=True)
class Notice:
    """One email to one person: who, about what, and its two bodies."""

    email: str
    name: str
    subject: str
    text: str
    html: str
    kind: str = "notice"  # what the log lines call it: "confirmation", ...


def render(env: jinja2.Environment, template: str, **context: object) -> tuple[str, str]:
    """Return the text and HTML bodies of templates/email/{template}.txt and .html."""
    text = env.get_template(f"email/{template}.txt").render(context)
    html = env.get_template(f"email/{template}.html").render(context)
    return text, charset_first(html)


def compose(notice: Notice, sender: str, list_name: str, date: datetime, to: str = "") -> bytes:
    """Return the message bytes: multipart/alternative, text (QP) and HTML (base64)."""
    display, address = parseaddr(sender)
    head = (
        address_line("From", display or list_name, address)
        + address_line("To", notice.name, to or notice.email)
        + header_line("Subject", notice.subject)
        + header_line("Date", format_datetime(date))
        + header_line("Message-ID", new_message_id(sender))
        + "Auto-Submitted: auto-generated\n"
        + "X-Auto-Response-Suppress: All\n"
        + "MIME-Version: 1.0\n"
    )
    return alternative(head, notice.text, notice.html)


def letter(notice: Notice, settings: Settings, date: datetime) -> Letter:
    """Compose a notice as written and, for a non-ASCII address, with its domain in ASCII."""
    message = compose(notice, settings.sender, settings.name, date)
    signer = Signer.cached(settings.smtp)  # DKIM when [smtp] dkim_* are set
    if notice.email.isascii():
        return signed(signer, Letter(notice.email, message))
    ascii_form = ascii_address(notice.email)  # None: the relay must offer SMTPUTF8
    ascii_message = None
    if ascii_form:
        ascii_message = compose(notice, settings.sender, settings.name, date, ascii_form)
    return signed(signer, Letter(notice.email, message, ascii_form, ascii_message))


def transport(settings: Settings) -> Transport:
    """Return a fresh way to send one email: the SMTP relay, else the Maildir outbox."""
    if settings.smtp is not None:
        return SmtpConnection(settings.smtp)
    return MaildirTransport(settings.outbox)


async def send(notice: Notice, settings: Settings, date: datetime, masked: str) -> bool:
    """Send one notice over its own connection; log one line and return False if it fails."""
    try:
        way = transport(settings)
    except SendError as exc:
        log.warning("web: %s to %s not sent: %s", notice.kind, masked, exc)
        return False
    try:
        await way.send(letter(notice, settings, date), parseaddr(settings.sender)[1])
    except (SendError, OSError, ValueError) as exc:
        log.warning("web: %s to %s not sent: %s", notice.kind, masked, exc)
        return False
    finally:
        await way.close()
    log.info("web: %s sent to %s", notice.kind, masked)
    return True


# --- a sign-up's one email: a confirmation, or a note to someone subscribed already ---------


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
    known = subscribed(store, settings, email)
    store.add_signup(nonce, email, name, topics, now)
    return known


def subscribed(store: Store, settings: Settings, email: str) -> bool:
    """Tell whether an address gets the digest: a confirmed sign-up, or subscribers.csv's."""
    if store.is_suppressed(email):
        return False
    person = store.person(email)
    if person is not None and person.source == "web" and person.confirmed_at is not None:
        return True
    key = address_key(email)
    try:
        rows = read_subscribers(settings.subscribers, settings.keywords)
        return any(isinstance(r, Subscriber) and address_key(r.email) == key for r in rows)
    except SubscribersError:
        return False


def signup_notice(
    settings: Settings,
    env: jinja2.Environment,
    secret: bytes,
    nonce: str,
    email: str,
    name: str,
    topics: list[str],
    now: datetime,
    known: bool,
) -> Notice:
    """Compose a sign-up's confirmation email, or the note to someone subscribed already."""
    expires = (now + VALID_FOR).astimezone(settings.timezone)
    context = {
        "list_name": settings.name,
        "greeting": greeting(name),
        "email": email,
        "topics": [k.name for k in settings.keywords if k.key in topics],
        "known": known,
        "hours": VALID_FOR // timedelta(hours=1),
        "expires": f"{long_date(expires)}, {expires:%H:%M} ({settings.timezone.key})",
        "confirm_url": "",
        "manage_url": f"{settings.base_url}/manage?token={make_token(secret, email)}",
        "unsubscribe_url": f"{settings.base_url}/unsubscribe?token={make_token(secret, email)}",
    }
    if known:
        subject, kind = f"You are already subscribed to {settings.name}", "subscribed note"
    else:
        subject, kind = f"Confirm your subscription to {settings.name}", "confirmation"
        token = make_confirm_token(secret, nonce, now + VALID_FOR)
        context["confirm_url"] = f"{settings.base_url}/confirm?token={token}"
    text, html = render(env, "confirm", **context)
    return Notice(email, name, subject, text, html, kind)
