"""Sign and verify unsubscribe, manage, form and sign-up tokens without showing any address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .addresses import address_key, legacy_address_key, mailbox_key

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$")


class TokenError(Exception):
    """The token is missing, malformed, altered or signed with another secret."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: bytes, purpose: str, email: str, key: Callable[[str], str] = address_key) -> bytes:
    message = f"{purpose}\x00{key(email)}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def token_id(secret: bytes, email: str) -> str:
    """Return the public, opaque identifier of an address (the token's first half)."""
    return _b64(_mac(secret, "id", email)[:12])


def make_token(secret: bytes, email: str) -> str:
    """Return an address's token as mailed before links had purposes: 'id.signature'.

    It unsubscribes forever, and opens the person's page until they sign out their links.
    """
    return f"{token_id(secret, email)}.{_b64(_mac(secret, 'unsubscribe', email)[:16])}"


def parse_token(token: str | None) -> str:
    """Return the token's id part, or raise TokenError if it is not shaped like a token."""
    if not token or not _TOKEN_RE.fullmatch(token):
        raise TokenError("malformed token")
    return token.split(".", 1)[0]


def verify_token(secret: bytes, token: str, email: str | None) -> str:
    """Return the address if the token is this address's genuine old-format token; raise
    TokenError."""
    parse_token(token)
    if email is None:
        raise TokenError("unknown token id")
    # Old-format links were signed over the key as it was before look-alikes were kept apart
    # (legacy_address_key): for the few addresses whose key changed, that signature still counts.
    for key in (address_key, legacy_address_key):
        mac = _mac(secret, "id", email, key)[:12], _mac(secret, "unsubscribe", email, key)[:16]
        expected = f"{_b64(mac[0])}.{_b64(mac[1])}"
        if hmac.compare_digest(expected.encode(), token.encode()):
            return email
    raise TokenError("bad signature")


# --- a person's links by purpose: 'id.u.signature' unsubscribes, 'id.mN.signature' manages ---

_LINK_RE = re.compile(r"^([A-Za-z0-9_-]{16})\.(u|m\d{1,9})\.([A-Za-z0-9_-]{22})$")
LEGACY, UNSUBSCRIBE, MANAGE = "legacy", "unsubscribe", "manage"


@dataclass(frozen=True)
class LinkToken:
    """A person's link token, read but not yet verified: its id, purpose and version."""

    token: str
    id: str
    purpose: str  # LEGACY (mailed before links had purposes), UNSUBSCRIBE or MANAGE
    version: int = 0  # a manage link's version; 0 for the others


def _link_mac(secret: bytes, purpose: str, version: int, email: str) -> str:
    label = "unsubscribe-only" if purpose == UNSUBSCRIBE else f"manage\x00{version}"
    return _b64(_mac(secret, label, email)[:16])


def unsubscribe_token(secret: bytes, email: str) -> str:
    """Return an address's unsubscribe token: it only unsubscribes, and never expires."""
    return f"{token_id(secret, email)}.u.{_link_mac(secret, UNSUBSCRIBE, 0, email)}"


def manage_token(secret: bytes, email: str, version: int) -> str:
    """Return the token of an address's page at a version of their links (see link_version)."""
    if not 0 <= version < 10**9:
        raise ValueError("a link version is a whole number from 0 to 999999999")
    return f"{token_id(secret, email)}.m{version}.{_link_mac(secret, MANAGE, version, email)}"


def read_link(token: str | None) -> LinkToken:
    """Return what a person's link token claims to be; raise TokenError if it is none."""
    if token and _TOKEN_RE.fullmatch(token):
        return LinkToken(token, token.split(".", 1)[0], LEGACY)
    match = _LINK_RE.fullmatch(token or "")
    if match is None:
        raise TokenError("malformed token")
    if match[2] == "u":
        return LinkToken(token or "", match[1], UNSUBSCRIBE)
    return LinkToken(token or "", match[1], MANAGE, int(match[2][1:]))


def verify_link(secret: bytes, link: LinkToken, email: str | None) -> str:
    """Return the address if the link is this address's genuine token of its purpose and
    version (the version is not compared with the current one here); raise TokenError."""
    if email is None:
        raise TokenError("unknown token id")
    if link.purpose == LEGACY:
        return verify_token(secret, link.token, email)
    if link.purpose == UNSUBSCRIBE:
        expected = unsubscribe_token(secret, email)
    else:
        expected = manage_token(secret, email, link.version)
    if not hmac.compare_digest(expected.encode(), link.token.encode()):
        raise TokenError("bad signature")
    return email


def form_token(secret: bytes, purpose: str, subject: str) -> str:
    """Return the hidden value a form posts back: bound to its purpose and its subject.

    A cross-site page cannot know it, so a POST without it is refused (CSRF).
    """
    message = f"form\x00{purpose}\x00{subject}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def check_form_token(secret: bytes, purpose: str, subject: str, value: str | None) -> bool:
    """Tell whether a form posted back the value form_token gave it."""
    expected = form_token(secret, purpose, subject)
    return bool(value) and hmac.compare_digest(expected.encode(), (value or "").encode())


# --- single-use form tokens: 'id.signature', a fresh id each time a form is shown -------------

_TICKET_RE = re.compile(r"^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})$")


def _ticket_mac(secret: bytes, purpose: str, subject: str, ticket: str) -> str:
    message = f"ticket\x00{purpose}\x00{subject}\x00{ticket}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def form_ticket(secret: bytes, purpose: str, subject: str) -> str:
    """Return a form's single-use token: a fresh random id, signed with purpose and subject.

    The id is what the database records once the form is sent, so that it is sent only once.
    """
    ticket = secrets.token_urlsafe(12)
    return f"{ticket}.{_ticket_mac(secret, purpose, subject, ticket)}"


def check_form_ticket(secret: bytes, purpose: str, subject: str, value: str | None) -> str | None:
    """Return the id of a genuine form_ticket for this purpose and subject, or None."""
    match = _TICKET_RE.fullmatch(value or "")
    if match is None:
        return None
    expected = _ticket_mac(secret, purpose, subject, match[1])
    return match[1] if hmac.compare_digest(expected.encode(), match[2].encode()) else None


def mailbox_id(secret: bytes, email: str) -> str:
    """Return an opaque, keyed identifier of the mailbox an address reaches (for limits)."""
    message = f"mailbox\x00{mailbox_key(email)}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:12])


# --- sign-up confirmation links: 'nonce.expiry.signature', never an unsubscribe token -------

_CONFIRM_RE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")


class TokenExpired(TokenError):
    """The token (a confirmation's, the dashboard's) is genuine but its time is up."""


def _confirm_mac(secret: bytes, nonce: str, expiry: int) -> str:
    message = f"confirm\x00{nonce}\x00{expiry}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def make_confirm_token(secret: bytes, nonce: str, expires: datetime) -> str:
    """Return a sign-up's confirmation token: 'nonce.expiry.signature', valid until expires."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce):
        raise ValueError("a sign-up nonce is 16 to 64 URL-safe characters")
    expiry = int(expires.timestamp())
    return f"{nonce}.{expiry}.{_confirm_mac(secret, nonce, expiry)}"


def verify_confirm_token(secret: bytes, token: str | None, now: datetime) -> str:
    """Return the nonce of a genuine, unexpired confirmation token; raise TokenError or
    TokenExpired (a genuine token whose time is up)."""
    match = _CONFIRM_RE.fullmatch(token or "")
    if match is None:
        raise TokenError("malformed confirmation token")
    nonce, expiry, signature = match[1], int(match[2]), match[3]
    if not hmac.compare_digest(_confirm_mac(secret, nonce, expiry).encode(), signature.encode()):
        raise TokenError("bad signature")
    if now.timestamp() >= expiry:
        raise TokenExpired("expired confirmation token")
    return nonce


# --- return paths (VERP): 'id.signature' in lower-case base32, for an address's bounces ------

_BOUNCE_RE = re.compile(r"^([a-z2-7]{20})\.([a-z2-7]{16})$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode().lower()


def bounce_token(secret: bytes, email: str) -> str:
    """Return the token of an address's return path (VERP), bound to the purpose 'bounce'.

    Lower-case base32, because some mail systems lower-case an address's local part.
    """
    return f"{_b32(_mac(secret, 'id', email)[:12])}.{_b32(_mac(secret, 'bounce', email)[:10])}"


def bounce_token_id(token: str) -> str:
    """Return the token id (as in the unsubscribe token) a return path's token names."""
    match = _BOUNCE_RE.fullmatch(token.lower())
    if match is None:
        raise TokenError("malformed return-path token")
    return _b64(base64.b32decode(match[1].upper() + "===="))


def verify_bounce_token(secret: bytes, token: str, email: str) -> str:
    """Return the address if the token is its genuine return-path token; raise TokenError."""
    bounce_token_id(token)
    if not hmac.compare_digest(bounce_token(secret, email).encode(), token.lower().encode()):
        raise TokenError("bad signature")
    return email


# --- the operator's dashboard: 'admin.expiry.signature', short-lived (digest admin-link) ------

_ADMIN_RE = re.compile(r"^admin\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")


def _admin_mac(secret: bytes, expiry: int) -> str:
    message = f"admin\x00{expiry}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def admin_token(secret: bytes, expires: datetime) -> str:
    """Return a token that opens the operator's dashboard until expires, and nothing else."""
    expiry = int(expires.timestamp())
    return f"admin.{expiry}.{_admin_mac(secret, expiry)}"


def verify_admin_token(secret: bytes, token: str | None, now: datetime) -> datetime:
    """Return when a genuine, unexpired dashboard token expires; raise TokenError, or
    TokenExpired for a genuine token whose time is up."""
    match = _ADMIN_RE.fullmatch(token or "")
    if match is None:
        raise TokenError("malformed dashboard token")
    expiry = int(match[1])
    if not hmac.compare_digest(_admin_mac(secret, expiry).encode(), match[2].encode()):
        raise TokenError("bad signature")
    if now.timestamp() >= expiry:
        raise TokenExpired("expired dashboard token")
    return datetime.fromtimestamp(expiry, now.tzinfo)


# --- vote links: 'id.vN.signature', signed over the person, the paper and the vote ------------

_VOTE_RE = re.compile(r"^([A-Za-z0-9_-]{16})\.v(\d{1,9})\.([A-Za-z0-9_-]{22})$")
# An arXiv id, new ('2511.01234') or old ('hep-th/9901001', 'math.GT/0309136'): never '_'.
PAPER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9./-]{0,63}")
VOTES = {"up": 1, "down": -1}  # a vote link's word, and the vote it records


@dataclass(frozen=True)
class VoteToken:
    """A vote link read but not yet verified: its token's id and version, the paper, the vote."""

    token: str
    id: str
    version: int  # the version of the person's links it was mailed with (see link_version)
    paper: str
    vote: str  # "up" or "down"


def vote_signer(secret: bytes, email: str, version: int) -> Callable[[str, str], str]:
    """Return sign(paper, vote): the token of this address's link that votes `vote` ("up" or
    "down") on `paper`, at a version of their links.

    Cheap, for every paper of every email: the person's own key (an HMAC of the secret, their
    address key and the version) is made once; each paper and vote is then one keyed BLAKE2b.
    """
    if not 0 <= version < 10**9:
        raise ValueError("a link version is a whole number from 0 to 999999999")
    head = f"{token_id(secret, email)}.v{version}."
    key = _mac(secret, f"vote\x00{version}", email)

    def sign(paper: str, vote: str) -> str:
        if vote not in VOTES or not PAPER_ID.fullmatch(paper):
            raise ValueError(f"cannot sign a vote {vote!r} on {paper!r}")
        mac = hashlib.blake2b(f"{paper}\x00{vote}".encode(), key=key, digest_size=16).digest()
        return head + base64.urlsafe_b64encode(mac)[:22].decode()

    return sign


def read_vote(token: str | None, paper: str | None, vote: str | None) -> VoteToken:
    """Return what a vote link claims (its token, paper and vote); raise TokenError if the
    three cannot be one."""
    match = _VOTE_RE.fullmatch(token or "")
    if match is None or vote not in VOTES or not PAPER_ID.fullmatch(paper or ""):
        raise TokenError("malformed vote link")
    return VoteToken(token or "", match[1], int(match[2]), paper or "", vote or "")


def verify_vote(secret: bytes, link: VoteToken, email: str | None) -> str:
    """Return the address if the link is this address's genuine vote link for its paper, vote
    and version (the version is not compared with the current one here); raise TokenError."""
    if email is None:
        raise TokenError("unknown token id")
    expected = vote_signer(secret, email, link.version)(link.paper, link.vote)
    if not hmac.compare_digest(expected.encode(), link.token.encode()):
        raise TokenError("bad signature")
    return email
