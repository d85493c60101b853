"""Sign outgoing mail with DKIM (RFC 6376, via dkimpy) when [smtp] dkim_* are set."""

from __future__ import annotations

import base64
import dataclasses
import functools
import stat
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

if TYPE_CHECKING:
    from .config import Settings, SmtpSettings
    from .mail import Letter

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
KEYS = ("dkim_domain", "dkim_selector", "dkim_key_file")
NEW_KEY = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem"
_SIGNED = tuple(name.lower().encode() for name in SIGNED)


class DkimError(ValueError):
    """The DKIM key cannot be read, or is not a key DKIM verifiers accept."""


@dataclass(frozen=True)
class Key:
    """A private key in the form dkimpy signs with, and its public half for DNS."""

    kind: str  # the k= of the DNS record: "rsa" or "ed25519"
    bits: int
    private: bytes  # RSA: PKCS#1 PEM; ed25519: the base64 seed (dkimpy's forms)
    public: str  # base64, the p= of the DNS record

    @property
    def algorithm(self) -> bytes:
        """Return the a= of the signature."""
        return b"rsa-sha256" if self.kind == "rsa" else b"ed25519-sha256"


def load_key(path: Path) -> Key:
    """Read a PEM private key (RSA of 2048 to 4096 bits, or ed25519) or raise DkimError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimError(
            f"cannot read {path} ({exc.strerror}); make the key file readable by the user "
            "digest runs as, or fix the path (relative to the settings file)"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise DkimError(
            f"{path} is protected by a password; store it without one (readable only by "
            "digest's user): openssl pkey -in OLD.pem -out dkim.pem"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise DkimError(
            f"{path} is not a PEM private key; make one with: {NEW_KEY} (or -algorithm ed25519)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if not 2048 <= key.key_size <= 4096:
            raise DkimError(
                f"{path} is a {key.key_size}-bit RSA key; DKIM needs 2048 to 4096 bits "
                f"(RFC 8301): make a new one with: {NEW_KEY}, and publish the record "
                "`digest check` prints"
            )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Key("rsa", key.key_size, private, base64.b64encode(public).decode())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = serialization.Encoding.Raw
        seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
        return Key("ed25519", 256, base64.b64encode(seed), base64.b64encode(public).decode())
    kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey")
    raise DkimError(
        f"{path} holds a key of type {kind}; DKIM signs with RSA (2048 bits or more) or ed25519"
    )


def settings_problems(table: Any, values: dict[str, Any], root: Path) -> list[tuple[str, str]]:
    """Return (key, problem) pairs of [smtp]'s dkim_* keys: all three or none, a usable key.

    `table` is [smtp] as written, `values` as checked (None where a value was refused).
    """
    if not isinstance(table, dict):
        return []
    missing = [k for k in KEYS if k not in table]
    if len(missing) == len(KEYS):
        return []
    if missing:
        return [
            (
                k,
                "missing; dkim_domain, dkim_selector and dkim_key_file go together: set all "
                "three to sign with DKIM, or none to leave signing to the relay",
            )
            for k in missing
        ]
    if not values.get("dkim_key_file"):
        return []  # refused already
    try:
        load_key(root / values["dkim_key_file"])
    except DkimError as exc:
        return [("dkim_key_file", str(exc))]
    return []


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

    def letter(self, letter: Letter) -> Letter:
        """Return the letter with both its messages signed."""
        ascii_message = letter.ascii_message and self.sign(letter.ascii_message)
        return dataclasses.replace(
            letter, message=self.sign(letter.message), ascii_message=ascii_message
        )

    def record(self) -> str:
        """Return the DNS TXT record to publish, in strings of at most 255 characters."""
        value = f"v=DKIM1; k={self.key.kind}; p={self.key.public}"
        strings = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.selector}._domainkey.{self.domain}. IN TXT {strings}"


@functools.lru_cache(maxsize=4)
def _load_unchanged(path: Path, mtime_ns: int, size: int) -> Key:
    return load_key(path)  # about 40 ms for RSA: cryptography checks the key


def signed(signer: Signer | None, letter: Letter) -> Letter:
    """Return the letter signed, or as it is when DKIM is off."""
    return letter if signer is None else signer.letter(letter)


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
