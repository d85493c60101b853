"""Sign and verify unsubscribe, form and sign-up tokens without showing any address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime

from .addresses import address_key

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$")


class TokenError(Exception):
    """The token is missing, malformed, altered or signed with another secret."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: bytes, purpose: str, email: str) -> bytes:
    message = f"{purpose}\x00{address_key(email)}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def token_id(secret: bytes, email: str) -> str:
    """Return the public, opaque identifier of an address (the token's first half)."""
    return _b64(_mac(secret, "id", email)[:12])


def make_token(secret: bytes, email: str) -> str:
    """Return the unsubscribe token of an address: 'id.signature'."""
    return f"{token_id(secret, email)}.{_b64(_mac(secret, 'unsubscribe', email)[:16])}"


def parse_token(token: str | None) -> str:
    """Return the token's id part, or raise TokenError if it is not shaped like a token."""
    if not token or not _TOKEN_RE.fullmatch(token):
        raise TokenError("malformed token")
    return token.split(".", 1)[0]


def verify_token(secret: bytes, token: str, email: str | None) -> str:
    """Return the address if the token is this address's genuine token; raise TokenError."""
    parse_token(token)
    expected = make_token(secret, email or "")
    if not hmac.compare_digest(expected.encode(), token.encode()) or email is None:
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


# --- sign-up confirmation links: 'nonce.expiry.signature', never an unsubscribe token -------

_CONFIRM_RE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")


class TokenExpired(TokenError):
    """The confirmation token is genuine but its time is up."""


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
