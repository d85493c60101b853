"""Email addresses as people write them: one key for all spellings, and an ASCII form."""

from __future__ import annotations

import idna
from email_validator import EmailNotValidError, validate_email


def checked_key(address: str) -> str:
    """Validate an address; return the key all its spellings share (case, IDNA)."""
    try:
        return validate_email(address, check_deliverability=False).normalized.casefold()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def address_key(address: str) -> str:
    """Return the key of an address already checked: the same for every spelling of it."""
    address = address.strip()
    if address.isascii() and '"' not in address and "xn--" not in address.casefold():
        return address.casefold()  # what checked_key gives, without its cost
    try:
        return checked_key(address)
    except ValueError:
        return address.casefold()


def needs_smtputf8(address: str) -> bool:
    """Return True when the part before the @ is not ASCII: only an SMTPUTF8 relay takes it."""
    return not address.rpartition("@")[0].isascii()


def ascii_address(address: str) -> str | None:
    """Return the address with its domain IDNA-encoded; None if the part before @ is not ASCII."""
    local, at, domain = address.rpartition("@")
    if not at:
        raise ValueError(f"{address!r} has no @")
    if not local.isascii():
        return None
    if domain.isascii():
        return address
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


# One mailbox under two domains: Gmail ignores dots in the part before the @ there.
_GMAIL = {"gmail.com", "googlemail.com"}


def mailbox_key(address: str) -> str:
    """Return the key of the mailbox an address reaches, for limits: lowercase, `+tag` removed,
    and for gmail.com and googlemail.com (one mailbox) dots removed and the domains merged."""
    local, _, domain = address_key(address).rpartition("@")
    local, domain = local.lower(), domain.lower().rstrip(".")
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        local, domain = local.replace(".", "") or local, "gmail.com"
    return f"{local}@{domain}"
