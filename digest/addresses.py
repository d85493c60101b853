"""Email addresses as people write them: one key for all spellings, and an ASCII form."""

from __future__ import annotations

import unicodedata

import idna
from email_validator import EmailNotValidError, validate_email

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def checked_key(address: str) -> str:
    """Validate an address; return its key (address_key)."""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return address_key(address)


def address_key(address: str) -> str:
    """Return the key of an address: one for every spelling of a mailbox, another for each
    look-alike. The domain is lower-cased and IDNA-normalized; before the @ only the ASCII
    letters are (with a long s, ß or a Kelvin sign, the address is not one with s, ss or k)."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return _local_key(address)
    return f"{_local_key(local)}@{_domain_key(domain)}"


def _local_key(local: str) -> str:
    if local.isascii():
        return local.translate(_ASCII_LOWER)
    return _composed(local).translate(_ASCII_LOWER)


def _composed(text: str) -> str:
    """Return text in NFC, but for the characters NFC replaces by another one (the Kelvin sign
    by K, the Ohm sign by Ω), which stay as they are: one spelling of é, no look-alikes."""
    parts, start = [], 0
    for index, char in enumerate(text):
        decomposed = unicodedata.decomposition(char)
        if decomposed and not decomposed.startswith("<") and " " not in decomposed:
            parts += [unicodedata.normalize("NFC", text[start:index]), char]
            start = index + 1
    return "".join(parts) + unicodedata.normalize("NFC", text[start:])


def _domain_key(domain: str) -> str:
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.translate(_ASCII_LOWER)
    try:  # one form, in Unicode, as email_validator gives it: xn--strae-oqa.de is straße.de
        return idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError):
        return domain.lower()


def legacy_address_key(address: str) -> str:
    """Return the key databases stored before keys told look-alikes apart: case-folded whole
    (a long s was an s); the migration that computes keys again finds people by it."""
    address = address.strip()
    if address.isascii() and '"' not in address and "xn--" not in address.casefold():
        return address.casefold()
    try:
        return validate_email(address, check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
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
