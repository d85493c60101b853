"""Which secret signs the links, and the refusal to sign with another than the mail before."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from .store import Store

log = logging.getLogger(__name__)

INTENDED = (
    "or, if a new secret is intended, run `digest once --new-secret` once (the links already "
    "mailed then stop working)"
)


class SecretChanged(Exception):
    """The secret a cycle would sign with is not the one that signed the mail already sent."""


def fingerprint(secret: bytes) -> str:
    """Return a short one-way name of a secret, safe to keep beside the data."""
    return hashlib.sha256(b"digest-secret\0" + secret).hexdigest()[:16]


def mismatch(
    configured: str | None, recorded: str | None, since: str | None, kept: str | None
) -> SecretChanged | None:
    """Return the refusal when the secret that would sign is not the one that signed before.

    configured is DIGEST_SECRET; recorded, since and kept are what the database says
    (Store.secret_record): the fingerprint of the secret that signed, since when, and the
    secret digest generated and keeps when DIGEST_SECRET is unset.
    """
    if recorded is None:
        return None  # nothing signed yet: any secret is the first
    would_sign = configured or kept
    if would_sign is not None and fingerprint(would_sign.encode()) == recorded:
        return None
    kept_signed = kept is not None and fingerprint(kept.encode()) == recorded
    if configured and kept_signed:
        what = (
            "DIGEST_SECRET is set, but the mail already sent was signed with the secret digest "
            "generated and keeps in its database"
        )
        fix = "unset DIGEST_SECRET"
    elif configured:
        what = "DIGEST_SECRET is not the secret that signed the mail already sent"
        fix = "set it back to that one (the service's environment file)"
    else:
        what = "DIGEST_SECRET is not set, but the mail already sent was signed with it"
        fix = (
            "run digest with the service's environment file (`systemctl start digest-once`; "
            "see docs/operations.md, 'A cycle by hand')"
        )
    return SecretChanged(f"{what} (since {(since or '?')[:10]}): {fix}, {INTENDED}")


def signing_secret(store: Store, configured: str | None, now: datetime, new: bool = False) -> bytes:
    """Return the secret a cycle signs with, and record it; raise SecretChanged unless new.

    Refusing writes nothing: no secret is generated and no fingerprint recorded.
    """
    recorded, since, kept = store.secret_record()
    refusal = mismatch(configured, recorded, since, kept)
    if refusal is not None and not new:
        raise refusal
    secret = store.secret(configured)  # DIGEST_SECRET, the kept one, or a new one kept
    mark = fingerprint(secret)
    if mark == recorded:
        if new:
            log.info("secret: --new-secret: this is the secret that signed before; no change")
        return secret
    store.record_secret(mark, now)
    if recorded is not None:
        log.warning(
            "secret: signing with a new secret, as --new-secret asked: the links mailed "
            "before now (signed since %s) no longer work",
            (since or "?")[:10],
        )
    return secret
