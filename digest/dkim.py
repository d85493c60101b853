"""Sign outgoing mail with DKIM (RFC 6376, via dkimpy) when [smtp] dkim_* are set."""

from __future__ import annotations

import functools
import stat
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

import dkim

from .config import Settings, SmtpSettings
from .dkim_key import DkimError, Key, load_key

__all__ = ["SIGNED", "DkimError", "Key", "Signer", "check_lines", "load_key"]

# What h= covers, of those a message has; RFC 8058 wants both List-Unsubscribe headers signed
# (dkimpy's default list leaves out List-Unsubscribe-Post).
SIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
_SIGNED = tuple(name.lower().encode() for name in SIGNED)


@dataclass(frozen=True)
class Signer:
    """Sign messages as one domain and selector with a key loaded once."""

    domain: str
    selector: str
    key: Key

    @classmethod
    def of(cls, smtp: SmtpSettings | None) -> Signer | None:
        """Load the key of [smtp] dkim_*, or return None when DKIM is off."""
        if smtp is None or smtp.dkim_key_file is None:
            return None
        # The settings check lets the dkim_* keys through all three or none.
        assert smtp.dkim_domain is not None and smtp.dkim_selector is not None
        return cls(smtp.dkim_domain, smtp.dkim_selector, load_key(smtp.dkim_key_file))

    @classmethod
    def cached(cls, smtp: SmtpSettings | None) -> Signer | None:
        """Like of(), but reuse the key while its file is unchanged (for one-off emails)."""
        if smtp is None or smtp.dkim_key_file is None:
            return None
        # The settings check lets the dkim_* keys through all three or none.
        assert smtp.dkim_domain is not None and smtp.dkim_selector is not None
        try:
            info = smtp.dkim_key_file.stat()
        except OSError:
            return cls.of(smtp)  # which says why it cannot be read
        key = _load_unchanged(smtp.dkim_key_file, info.st_mtime_ns, info.st_size)
        return cls(smtp.dkim_domain, smtp.dkim_selector, key)

    def sign(self, message: bytes) -> bytes:
        """Return the message with a DKIM-Signature header (relaxed/relaxed) in front."""
        linesep = b"\r\n" if message.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
        try:
            signer = dkim.DKIM(message, linesep=linesep, signature_algorithm=self.key.algorithm)
            present = {name.lower() for name, _ in signer.headers}
            include = [name for name in _SIGNED if name in present]
            header = signer.sign(
                self.selector.encode(),
                self.domain.encode(),
                self.key.private,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=include,
            )
        except dkim.DKIMException as exc:
            raise DkimError(f"cannot sign the message with DKIM: {exc}") from None
        return header + message

    def record(self) -> str:
        """Return the DNS TXT record to publish, in strings of at most 255 characters."""
        value = f"v=DKIM1; k={self.key.kind}; p={self.key.public}"
        strings = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.selector}._domainkey.{self.domain}. IN TXT {strings}"


@functools.lru_cache(maxsize=4)
def _load_unchanged(path: Path, mtime_ns: int, size: int) -> Key:
    return load_key(path)  # about 40 ms for RSA: cryptography checks the key


def check_lines(settings: Settings) -> list[str]:
    """Return what `digest check` says about DKIM: the DNS record to publish, or that it is off."""
    try:
        signer = Signer.of(settings.smtp)
    except DkimError as exc:
        return [f"  DKIM: {exc}"]
    if signer is None:
        return [
            "  DKIM: off (the relay signs, or set [smtp] dkim_domain, dkim_selector and "
            "dkim_key_file)"
        ]
    key = signer.key
    lines = [
        f"  DKIM: signs as d={signer.domain} s={signer.selector} with a {key.bits}-bit "
        f"{key.kind} key; publish this DNS TXT record:",
        f"    {signer.record()}",
    ]
    sender = parseaddr(settings.sender)[1].rpartition("@")[2].lower()
    domain = signer.domain.lower()
    if not (sender == domain or sender.endswith("." + domain) or domain.endswith("." + sender)):
        lines.append(
            f"  warning: dkim_domain {signer.domain} is neither the From domain {sender} nor "
            "a parent or subdomain of it: DMARC counts the signature only if both share an "
            "organizational domain"
        )
    # A signer, so [smtp] names the key file.
    assert settings.smtp is not None and settings.smtp.dkim_key_file is not None
    mode = settings.smtp.dkim_key_file.stat().st_mode
    if mode & stat.S_IROTH:
        lines.append(
            f"  warning: {settings.smtp.dkim_key_file} is readable by everyone; "
            f"chmod o-r {settings.smtp.dkim_key_file.name}"
        )
    return lines
