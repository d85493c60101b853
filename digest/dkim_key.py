"""Read and check a DKIM private key file (below the settings, which check [smtp] dkim_*)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KEYS = ("dkim_domain", "dkim_selector", "dkim_key_file")
NEW_KEY = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem"


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
