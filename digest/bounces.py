"""Read the bounce mailbox: count bounces, unsubscribe complainers, move what was read.

Each message is recorded by its Message-ID, so none counts twice; a message that is neither a
bounce nor a report stays where it is. Who a report is about comes first from a signed token
(the return path's, VERP, or the unsubscribe link in the returned copy), then from the report.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .bouncebox import BounceBox, BounceBoxError, BoxMessage, open_box
from .bouncemail import Report, read_report, verp_pattern
from .config import Settings
from .store import BOUNCE_LIMIT, BounceFinding, Effect, Store
from .tokens import (
    TokenError,
    bounce_token_id,
    read_link,
    token_id,
    verify_bounce_token,
    verify_link,
)

log = logging.getLogger(__name__)

_PRECEDENCE = ("complaint", "bounce", "delay", "report")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One line of `digest bounces`: what a message said of an address, and what was done."""

    name: str  # the message's file name in the Maildir, or its IMAP UID
    address: str
    kind: str  # "bounce", "delay", "complaint", "report", "junk" or "duplicate"
    status: str
    action: str


def line(outcome: Outcome) -> str:
    """Return an outcome as a line of `digest bounces`."""
    return (
        f"{outcome.address or '-':<32} {outcome.kind:<9} {outcome.status or '-':<6} "
        f"{outcome.action}  [{outcome.name}]"
    )


def read_bounces(
    settings: Settings,
    store: Store,
    secret: bytes,
    now: datetime,
    beat: Callable[[], None] = lambda: None,
) -> list[Outcome]:
    """Read every message of the bounce mailbox; raise BounceBoxError if it cannot be read.

    `beat` is called after each message (the daemon's watchdog sees the cycle alive).
    """
    if settings.bounces is None:
        return []
    verp = verp_pattern(settings.smtp.return_path if settings.smtp else None)
    box = open_box(settings.bounces)
    outcomes: list[Outcome] = []
    try:
        for item in box.messages():
            outcomes += _handle(box, item, store, secret, verp, now)
            beat()
    finally:
        box.close()
    return outcomes


def read_in_cycle(
    settings: Settings,
    store: Store,
    secret: bytes,
    now: datetime,
    beat: Callable[[], None] = lambda: None,
) -> None:
    """Read the bounce mailbox at the start of a cycle; a failure is a warning, never fatal."""
    try:
        outcomes = read_bounces(settings, store, secret, now, beat)
    except BounceBoxError as exc:
        log.warning("bounces: cannot read the bounce mailbox (%s); the cycle goes on", exc)
        return
    kinds = [o.kind for o in outcomes]
    if outcomes:
        log.info(
            "bounces: %d read: %d bounces, %d complaints, %d delays, %d duplicates, %d junk",
            len(outcomes),
            *(kinds.count(k) for k in ("bounce", "complaint", "delay", "duplicate", "junk")),
        )


def _handle(
    box: BounceBox,
    item: BoxMessage,
    store: Store,
    secret: bytes,
    verp: re.Pattern[str] | None,
    now: datetime,
) -> list[Outcome]:
    try:
        report = read_report(item.data, verp)
    except Exception as exc:  # the email package or a detector on a broken message
        log.warning("bounces: %s cannot be read (%s); left in place", item.name, exc)
        return [Outcome(item.name, "", "junk", "", f"left in place: cannot be read ({exc})")]
    if report.kind == "junk":
        log.warning("bounces: %s is neither a bounce nor a report; left in place", item.name)
        return [Outcome(item.name, "", "junk", "", "left in place: not a bounce or a report")]
    findings = attribute(report, store, secret)
    effects = store.record_report(report.message_id, findings, now)
    box.move(item)
    if effects is None:
        seen = store.report_seen(report.message_id)
        action = f"already read {seen:%Y-%m-%d %H:%M}; counted once; moved to processed"
        log.info("bounces: %s: %s %s", item.name, report.message_id, action)
        return [Outcome(item.name, f.email, "duplicate", f.status, action) for f in findings]
    outcomes = []
    said = "; ".join(dict.fromkeys(r.detail for r in report.recipients if r.detail))
    for finding, effect in zip(findings, effects, strict=True):
        action = describe(finding, effect) + "; moved to processed"
        outcomes.append(Outcome(item.name, finding.email, finding.kind, finding.status, action))
        level = logging.WARNING if effect.suppressed or not finding.email else logging.INFO
        log.log(level, "bounces: %s: %s %s %s (%s): %s", item.name, finding.email or "nobody",
                finding.kind, finding.status or "-", said or "no diagnostic", action)  # fmt: skip
    return outcomes


def attribute(report: Report, store: Store, secret: bytes) -> list[BounceFinding]:
    """Say whom each part of a report is about, and which mail of ours it reports on."""
    signed = _signed_address(report, store, secret)
    # Different digests have different Message-IDs; a report quoting none counts as one digest.
    digest = (report.originals or (report.message_id,))[0]
    found: dict[str, BounceFinding] = {}
    for recipient in report.recipients:
        email = signed or recipient.address
        finding = BounceFinding(email, recipient.kind, recipient.status, digest, recipient.counts)
        before = found.get(email.casefold())
        if before is None or _rank(finding) < _rank(before):
            found[email.casefold()] = finding
    return list(found.values())


def _rank(finding: BounceFinding) -> tuple[int, bool]:
    return _PRECEDENCE.index(finding.kind), not finding.counts


def _signed_address(report: Report, store: Store, secret: bytes) -> str | None:
    """Return the address a genuine return-path or unsubscribe token in the report names."""
    for token in report.verp:
        try:
            found = bounce_token_id(token)
            email = store.recipient(found) or _signed_up(store, secret, found)
            if email:
                return verify_bounce_token(secret, token, email)
        except TokenError:
            continue
    for token in report.unsubscribe:
        try:
            link = read_link(token)
            if email := store.recipient(link.id):
                return verify_link(secret, link, email)
        except TokenError:
            continue
    return None


def _signed_up(store: Store, secret: bytes, found: str) -> str | None:
    """Return the sign-up address a token id stands for (a web email's return path), or None."""
    return next((e for e in store.signup_addresses() if token_id(secret, e) == found), None)


def describe(finding: BounceFinding, effect: Effect) -> str:
    """Say what recording a finding did."""
    if not finding.email:
        return "no address found: counted for nobody"
    already = f"; already off the list ({effect.before})" if effect.before else ""
    if finding.kind == "complaint":
        return "unsubscribed (complaint)" if effect.suppressed else already.lstrip("; ")
    if finding.kind == "delay":
        return "not counted: a delay"
    if finding.kind == "report":
        return "nothing to do"
    if finding.counts:
        suppressed = ": suppressed as bounced" if effect.suppressed else ""
        return f"counted ({effect.failures} of {BOUNCE_LIMIT}){suppressed}{already}"
    if finding.status.startswith("4"):
        return f"not counted: {finding.status} is not permanent"
    return f"not counted: {finding.status or 'no code'} blames the message, not the address"
