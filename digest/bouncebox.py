"""The mailbox bounces arrive in, a Maildir or an IMAP folder: list, read, move to `processed`."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import mailbox
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .config import BouncesSettings

log = logging.getLogger(__name__)

PROCESSED = "processed"  # the folder read messages are moved to; never deleted
TIMEOUT = 30.0  # seconds for each IMAP command


class BounceBoxError(Exception):
    """The bounce mailbox cannot be opened, read or written."""


@dataclass(frozen=True, slots=True)
class BoxMessage:
    """One message of the mailbox: where it is (a file name or an IMAP UID) and its bytes."""

    name: str
    data: bytes


class BounceBox(Protocol):
    """A mailbox to read bounces from."""

    def messages(self) -> Iterator[BoxMessage]:
        """Yield every message waiting in the mailbox."""

    def move(self, item: BoxMessage) -> None:
        """Move a message to the `processed` folder (created if missing)."""

    def close(self) -> None:
        """Release the mailbox."""


def open_box(settings: BouncesSettings) -> BounceBox:
    """Open the mailbox [bounces] names."""
    if settings.maildir is not None:
        return MaildirBox(settings.maildir)
    return ImapBox(settings)


class MaildirBox:
    """A Maildir; `processed` is its Maildir++ subfolder `.processed`, as Dovecot keeps it."""

    def __init__(self, path: Path):
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise BounceBoxError(
                f"{path} is not a Maildir (no new/ and cur/ in it); check [bounces] maildir"
            )
        self.path = path

    def messages(self) -> Iterator[BoxMessage]:
        """Yield the messages of new/ and cur/, oldest name first."""
        for folder in ("new", "cur"):
            try:
                names = sorted(os.listdir(self.path / folder))
            except OSError as exc:
                raise BounceBoxError(f"{self.path / folder}: {exc.strerror}") from None
            for name in names:
                if name.startswith("."):
                    continue
                try:
                    data = (self.path / folder / name).read_bytes()
                except FileNotFoundError:  # moved meanwhile by another reader
                    continue
                except OSError as exc:
                    raise BounceBoxError(f"{self.path / folder / name}: {exc.strerror}") from None
                yield BoxMessage(f"{folder}/{name}", data)

    def move(self, item: BoxMessage) -> None:
        """Move a message into .processed/ (new/ or cur/ as it was), keeping its name."""
        target = self.path / f".{PROCESSED}"
        try:
            if not (target / "cur").is_dir():
                mailbox.Maildir(self.path, create=False).add_folder(PROCESSED)
            os.replace(self.path / item.name, target / item.name)
        except FileNotFoundError:
            log.info("bounces: %s was moved meanwhile", item.name)
        except OSError as exc:
            raise BounceBoxError(f"cannot move {item.name} to {target}: {exc.strerror}") from None

    def close(self) -> None:
        """Nothing to release."""


class ImapBox:
    """A folder on an IMAP server (imaplib, a timeout on every command)."""

    def __init__(self, settings: BouncesSettings, timeout: float = TIMEOUT):
        self.where = f"[bounces] imap {settings.imap_host}:{settings.imap_port}"
        if not settings.password:
            raise BounceBoxError(
                f"{self.where}: no password; set DIGEST_BOUNCES_PASSWORD in the environment"
            )
        if not settings.imap_tls:
            log.warning(
                "%s: imap:// sends the password unencrypted; use imaps:// unless the server is "
                "on this machine",
                self.where,
            )
        self.folder = settings.imap_folder
        self._processed = False
        assert settings.imap_host is not None  # open_box: no maildir, so an imap URL with a host
        try:
            if settings.imap_tls:
                context = ssl.create_default_context(
                    cafile=str(settings.ca_file) if settings.ca_file else None
                )
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    settings.imap_host, settings.imap_port, ssl_context=context, timeout=timeout
                )
            else:
                self.conn = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceBoxError(f"{self.where}: cannot connect ({exc})") from None
        try:
            self.conn.login(settings.imap_user, settings.password)
            # What the server offers once logged in (MOVE, UIDPLUS), not what it said before.
            answer = self._ok(self.conn.capability(), "capability")
            self.capabilities = set(_text(answer).upper().split())
            self._ok(self.conn.select(_quoted(self.folder)), f"select {self.folder}")
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise BounceBoxError(f"{self.where}: {_text(exc)}") from None

    def _ok(self, answer: tuple[str, list], what: str) -> list:
        status, data = answer
        if status != "OK":
            raise BounceBoxError(f"{self.where}: {what}: {_text(data)}")
        return data

    def messages(self) -> Iterator[BoxMessage]:
        """Yield every message of the folder, by UID, without marking it read."""
        try:
            data = self._ok(self.conn.uid("SEARCH", "UNDELETED"), "search")
            for uid in (data[0] or b"").split():
                fetched = self._ok(self.conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "fetch")
                body = next((p[1] for p in fetched if isinstance(p, tuple)), None)
                if body is not None:
                    yield BoxMessage(f"UID {uid.decode()}", body)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceBoxError(f"{self.where}: {_text(exc)}") from None

    def move(self, item: BoxMessage) -> None:
        """Move a message by UID to `processed` (MOVE, else COPY and expunge just that one)."""
        uid = item.name.removeprefix("UID ")
        try:
            if not self._processed:
                listed = self._ok(self.conn.list('""', PROCESSED), "list")
                if not any(entry for entry in listed if entry):
                    self._ok(self.conn.create(PROCESSED), f"create {PROCESSED}")
                self._processed = True
            if "MOVE" in self.capabilities:
                self._ok(self.conn.uid("MOVE", uid, PROCESSED), f"move UID {uid}")
                return
            self._ok(self.conn.uid("COPY", uid, PROCESSED), f"copy UID {uid}")
            self._ok(self.conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), "store")
            if "UIDPLUS" in self.capabilities:  # else it stays, flagged \Deleted, unread
                self._ok(self.conn.uid("EXPUNGE", uid), "expunge")
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceBoxError(f"{self.where}: {_text(exc)}") from None

    def close(self) -> None:
        """Log out (errors on the way out do not matter)."""
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.conn.logout()


def _quoted(folder: str) -> str:
    return folder if re.fullmatch(r"[A-Za-z0-9._/-]+", folder) else '"' + folder + '"'


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
