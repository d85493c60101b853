"""Read one message of the bounce mailbox: a bounce (DSN or not), a complaint (ARF), or junk.

Addresses come from flufl.bounce (Mailman's detectors for Postfix, Exim, qmail, Exchange,
Yahoo …); the class of a failure from the RFC 3464 Status field, else from an RFC 3463 code
in the text, judged as digest judges a refusal at SMTP time. Feedback reports (RFC 5965) are
read here.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr

import aiosmtplib
import flufl.bounce

from .transport import Failure, classify

log = logging.getLogger(__name__)

# An RFC 3463 failure status (class 4 or 5, subject 0-7) and an SMTP reply code, in free text.
_ENHANCED_RE = re.compile(r"(?<![\w.])([45])\.([0-7])\.([0-9]{1,3})(?!\.?[0-9])")
_REPLY_RE = re.compile(r"(?<![\w.\[])([45][0-5][0-9])(?=[- :]|$)")
_MESSAGE_ID_RE = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# An unsubscribe token: 'id.signature' (mailed before links had purposes) or 'id.u.signature'.
_UNSUBSCRIBE_RE = re.compile(r"[?&]token=([A-Za-z0-9_-]{16}\.(?:u\.)?[A-Za-z0-9_-]{22})")
COMPLAINTS = ("abuse", "fraud", "virus", "other")  # feedback types that unsubscribe at once


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a report says of one address."""

    address: str  # "" when the report names none (a return-path token may)
    kind: str  # "bounce", "delay", "complaint" or "report"
    status: str  # the RFC 3463 status, such as "5.1.1", or ""
    counts: bool  # a permanent failure of the address: counts toward the bounce limit
    detail: str = ""  # the diagnostic, shortened


@dataclass(frozen=True, slots=True)
class Report:
    """What one message of the bounce mailbox says."""

    message_id: str  # its own Message-ID, else a digest of its bytes
    kind: str  # "bounce", "delay", "complaint", "report" or "junk"
    recipients: tuple[Recipient, ...]
    originals: tuple[str, ...]  # Message-IDs of the mail it reports on, the likeliest first
    verp: tuple[str, ...] = ()  # return-path (VERP) tokens found in it
    unsubscribe: tuple[str, ...] = ()  # unsubscribe tokens found in it (a complaint's copy)


def verp_pattern(return_path: str | None) -> re.Pattern[str] | None:
    """Return the pattern that finds a return path's token, or None without a {token}."""
    if not return_path or "{token}" not in return_path:
        return None
    before, after = return_path.split("{token}", 1)
    token = r"([a-z2-7]{20}\.[a-z2-7]{16})"
    return re.compile(re.escape(before) + token + re.escape(after), re.IGNORECASE)


def read_report(raw: bytes, verp: re.Pattern[str] | None = None) -> Report:
    """Read a message from the bounce mailbox (compat32, as flufl.bounce expects)."""
    msg = email.message_from_bytes(raw)
    own = (msg.get("Message-ID") or "").strip()
    message_id = own or "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
    texts = _texts(raw, msg)
    originals = _originals(msg, texts, own)
    tokens = _unique(t.lower() for text in texts for t in verp.findall(text)) if verp else ()
    unsubscribe = _unique(t for text in texts for t in _UNSUBSCRIBE_RE.findall(text))
    feedback = _part(msg, "message/feedback-report")
    recipients = _complaint(feedback, msg) if feedback is not None else _failures(msg)
    return Report(message_id, _kind(recipients), recipients, originals, tokens, unsubscribe)


def _kind(recipients: tuple[Recipient, ...]) -> str:
    kinds = {r.kind for r in recipients}
    for kind in ("complaint", "bounce", "delay", "report"):
        if kind in kinds:
            return kind
    return "junk"


def _part(msg: email.message.Message, content_type: str) -> email.message.Message | None:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _texts(raw: bytes, msg: email.message.Message) -> list[str]:
    """Return the raw message and each part decoded (a token may be quoted-printable)."""
    texts = [raw.decode("latin-1")]
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() not in ("text", "message"):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and part.get("Content-Transfer-Encoding"):
            texts.append(payload.decode("latin-1"))
    return texts


def _originals(msg: email.message.Message, texts: list[str], own: str) -> tuple[str, ...]:
    """Return the Message-IDs of the mail a report quotes: its returned copy's first."""
    found = []
    for part in msg.walk():
        if part is msg:
            continue
        if part.get_content_type() == "text/rfc822-headers":
            headers = email.parser.BytesHeaderParser().parsebytes(_body(part))
            found.append(headers.get("Message-ID", ""))
        elif part.get("Message-ID") and part.get_content_type() != "message/rfc822":
            found.append(part["Message-ID"])  # the copy inside a message/rfc822 part
    found += [m for text in texts for m in _MESSAGE_ID_RE.findall(text)]
    return _unique(m.strip() for m in found if m.strip() and m.strip() != own)


def _complaint(
    feedback: email.message.Message, msg: email.message.Message
) -> tuple[Recipient, ...]:
    """Read an ARF report (RFC 5965): who complained, or what else it reports."""
    payload = feedback.get_payload()
    fields = payload[0] if isinstance(payload, list) and payload else feedback
    assert isinstance(fields, email.message.Message)  # a message/* part holds messages
    if isinstance(payload, str):
        fields = email.parser.HeaderParser().parsestr(payload.lstrip())
    kind_of = (fields.get("Feedback-Type") or "").strip().lower()
    kind = "complaint" if kind_of in COMPLAINTS else "report"
    addresses = [parseaddr(a)[1] for a in fields.get_all("Original-Rcpt-To") or []]
    if not addresses:  # the complained-of copy's To, unless the provider redacted it
        copy = _part(msg, "text/rfc822-headers")
        headers = (
            email.parser.BytesHeaderParser().parsebytes(_body(copy))
            if copy is not None
            else next((p for p in msg.walk() if p is not msg and p.get("To")), None)
        )
        if headers is not None:
            addresses = [parseaddr(headers.get("To", ""))[1]]
    addresses = [a for a in addresses if "@" in a] or [""]
    return tuple(Recipient(a, kind, "", False, f"feedback-type {kind_of}") for a in addresses)


def _failures(msg: email.message.Message) -> tuple[Recipient, ...]:
    """Read a bounce: flufl.bounce's addresses, each with the status a DSN or the text gives."""
    blocks = _dsn_blocks(msg)
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception as exc:  # a detector that chokes on a strange message: say so, go on
        log.warning("bounces: flufl.bounce could not read %s (%s)", msg.get("Message-ID"), exc)
        temporary, permanent = frozenset(), frozenset()
    found: dict[str, Recipient] = {}
    text = _plain_text(msg)
    for raw_address in sorted(permanent | temporary):
        address = raw_address.decode("ascii", "replace")
        block = blocks.get(address.casefold())
        if block is not None:
            found[address.casefold()] = block
        else:
            found[address.casefold()] = _from_text(address, raw_address in permanent, text)
    # Nothing flufl.bounce counts as failed: what the DSN says (delivered, or failed without
    # naming the recipient: a return-path token may name them).
    return tuple(found.values()) if found else tuple(blocks.values())


def _dsn_blocks(msg: email.message.Message) -> dict[str, Recipient]:
    """Return the per-recipient blocks of RFC 3464 delivery-status parts, by address."""
    found: dict[str, Recipient] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            assert isinstance(block, email.message.Message)  # a multipart holds messages
            action = (block.get("Action") or "").strip().lower()
            status_field = block.get("Status") or ""
            if not action and not status_field:  # the block about the message as a whole
                continue
            address = ""
            for field in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
                value = (block.get(field) or "").split(";", 1)[-1]
                if "@" in value:
                    address = parseaddr(value.strip())[1] or value.strip().strip("<>")
                    break
            diagnostic = " ".join((block.get("Diagnostic-Code") or "").split(";", 1)[-1].split())
            found.setdefault(address.casefold(), _judged(address, action, status_field, diagnostic))
    return found


def _judged(address: str, action: str, status_field: str, diagnostic: str) -> Recipient:
    """Judge one DSN block by its Action, and by the remote server's reply as at SMTP time.

    The reply in Diagnostic-Code wins over a Status of x.0.0, which is what an MTA writes
    when the remote server gave no enhanced code ('said: 550 unknown user').
    """
    if action.startswith(("delivered", "relayed", "expanded")) or status_field.startswith("2"):
        return Recipient(address, "report", _status(status_field), False, diagnostic[:200])
    if action.startswith("delayed"):
        return Recipient(address, "delay", _status(status_field), False, diagnostic[:200])
    status, field = _status(diagnostic), _status(status_field)
    reply = _REPLY_RE.search(diagnostic) or _REPLY_RE.match(status_field.strip())
    if not status and (not reply or (field and not field.endswith(".0.0"))):
        status = field
    return _classified(address, status, int(reply[1]) if reply else None, diagnostic)


def _status(text: str) -> str:
    match = _ENHANCED_RE.search(text)
    return ".".join(match.groups()) if match else ""


def _classified(address: str, status: str, reply: int | None, detail: str) -> Recipient:
    """Return a failure judged as a refusal at SMTP time with this status would be."""
    if not status and reply:
        status = str(reply)  # what the remote server said, without an enhanced code
    if status.startswith("4"):
        return Recipient(address, "bounce", status, False, detail[:200])
    code = reply if reply and reply >= 500 else 550 if status.startswith("5.") else 554
    enhanced = status if "." in status else ""
    refused = aiosmtplib.SMTPRecipientRefused(code, f"{enhanced} {detail}".strip(), address)
    counts = classify(refused).failure is Failure.BOUNCE
    return Recipient(address, "bounce", status, counts, detail[:200])


def _from_text(address: str, permanent: bool, text: str) -> Recipient:
    """Judge an address flufl.bounce found: by a code on its line or after it, if any."""
    start = text.casefold().find(address.casefold())
    near = text[text.rfind("\n", 0, start) + 1 : start + 600] if start >= 0 else ""
    status = _status(near)
    reply = _REPLY_RE.search(near)
    line = near.split("\n\n", 1)[0]
    if not permanent:
        return Recipient(address, "delay", status, False, " ".join(line.split())[:200])
    if not status and not reply:  # no code at all: flufl.bounce matched an unknown address
        return Recipient(address, "bounce", "", True, " ".join(line.split())[:200])
    return _classified(address, status, int(reply[1]) if reply else None, " ".join(line.split()))


def _plain_text(msg: email.message.Message) -> str:
    """Return the report's own text parts (not the returned copy of the original)."""
    parts = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            break  # what follows is the returned message
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(_decoded(payload, part.get_content_charset()))
    return "\n".join(parts)


def _body(part: email.message.Message) -> bytes:
    """Return a part's body, its transfer encoding undone (b"" for a multipart)."""
    body = part.get_payload(decode=True)
    return body if isinstance(body, bytes) else b""


def _decoded(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "latin-1", "replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("latin-1")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
