"""What `digest check` finds beyond the file's own problems: the secret, paths, pitfalls."""

from __future__ import annotations

import ipaddress
import os
import pwd
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import topics
from .addresses import address_key
from .chat import ChatError, service
from .config import Keyword, Settings
from .lock import lock_for
from .settings_schema import SCHEMA, Problems
from .signing import mismatch
from .store import peek_deleted, peek_meta
from .store.peek import peek_own_topics
from .subscribers import Subscriber, SubscribersError, read_subscribers

SIDE_FILES = ("-wal", "-shm", "-journal", ".requests")  # beside the database, as private

Access = Callable[[Path, int], bool]


@dataclass(frozen=True)
class CheckFinding:
    """One thing `digest check` found; a fatal one means digest cannot run as it is."""

    text: str
    fatal: bool = False


def findings(settings: Settings) -> list[CheckFinding]:
    """Return everything `digest check` finds in loaded settings, as the running user."""
    meta = peek_meta(settings.database, ("secret_fingerprint", "secret_since", "secret"))
    return [
        *secret_findings(settings, meta),
        *path_findings(settings),
        *own_topic_findings(settings),
        *usage_findings(settings),
        *mode_findings(settings),
        *deleted_findings(settings),
        *bounce_findings(settings),
        *channel_findings(settings),
    ]


def secret_findings(settings: Settings, meta: dict[str, str] | None) -> list[CheckFinding]:
    """Find a missing DIGEST_SECRET, or one that did not sign the mail already sent.

    meta is what the database keeps of its secret (None: no database, or unreadable). A
    short DIGEST_SECRET is a settings problem already (load_settings refuses it).
    """
    if meta is not None:
        refusal = mismatch(
            settings.secret, meta.get("secret_fingerprint"), meta.get("secret_since"),
            meta.get("secret"),
        )  # fmt: skip
        if refusal is not None:
            return [CheckFinding(str(refusal), fatal=True)]
    found = []
    if not settings.secret:
        found.append(
            CheckFinding(
                "DIGEST_SECRET (environment) is not set: links are signed with a secret digest "
                "generates and keeps in its database, so every digest command must run without "
                "it too; set it in the service's environment file (at least 32 random bytes)"
            )
        )
    if meta is None and settings.database.exists():
        found.append(
            CheckFinding(
                f"{settings.database}: cannot read it as {user()}, so the secret was not "
                "compared with the one that signed the mail already sent"
            )
        )
    return found


def path_findings(settings: Settings, access: Access = os.access) -> list[CheckFinding]:
    """Find the files and folders digest writes that the running user cannot write."""
    problems = _problems(settings)
    database = settings.database
    if why := unwritable(database, access):
        problems.add("digest", "database", why)
    elif why := unwritable(database.parent, access, folder=True):
        problems.add("digest", "database", f"{why}, where its lock file and write-ahead log go")
    lock = lock_for(database).path
    if lock.exists() and (why := unwritable(lock, access)):
        problems.add("digest", "database", f"{why} (the cycle lock beside the database)")
    archive = settings.archive
    if why := unwritable(archive, access) or unwritable(archive.parent, access, folder=True):
        problems.add("digest", "archive", why)
    if settings.smtp is None:  # mail goes to the Maildir: written in tmp/, moved to new/
        outbox = settings.outbox
        made = [outbox / s for s in ("tmp", "new") if (outbox / s).exists()]
        for path in made if outbox.is_dir() and made else [outbox]:
            if why := unwritable(path, access, folder=True):
                problems.add("digest", "outbox", why)
    fix = "; point it at a folder this user can write (or run digest as the user that can)"
    return [CheckFinding(text + fix, fatal=True) for text in problems.items]


def unwritable(path: Path, access: Access = os.access, folder: bool = False) -> str | None:
    """Say why the running user cannot write path (or create it), or None if it can.

    A missing path is judged by the nearest folder that exists (digest creates the rest).
    """
    if path.exists():
        if folder and not path.is_dir():
            return f"{path} is a file, not a folder"
        mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
        return None if access(path, mode) else f"{user()} cannot write {path}"
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not access(existing, os.W_OK | os.X_OK):
        return f"{user()} cannot create {path}: it cannot write in {existing}"
    return None


def bounce_findings(settings: Settings, access: Access = os.access) -> list[CheckFinding]:
    """Find a bounce mailbox digest cannot read, or a password it lacks or sends in clear.

    Nothing connects: an IMAP server's answer is `digest bounces`'s to give.
    """
    box = settings.bounces
    if box is None:
        return []
    errors, warnings = _problems(settings), _problems(settings)
    if box.maildir is not None:
        if why := unreadable_maildir(box.maildir, access):
            errors.add("bounces", "maildir", why)
    elif box.password is None:
        errors.add(
            "bounces",
            "imap",
            "DIGEST_BOUNCES_PASSWORD (environment) is not set: digest cannot log in to read "
            "bounces; set it in the service's environment file",
        )
    if box.imap_host and not box.imap_tls and not loopback(box.imap_host):
        warnings.add(
            "bounces",
            "imap",
            f"imap:// sends the password to {box.imap_host} unencrypted, across the network; "
            "use imaps:// (or a server on this machine)",
        )
    return [
        *(CheckFinding(text, fatal=True) for text in errors.items),
        *(CheckFinding(text) for text in warnings.items),
    ]


def channel_findings(settings: Settings) -> list[CheckFinding]:
    """Find [[channels]] Apprise cannot use (an unknown scheme, a variable unset, a URL it cannot
    read), and a token sent in clear across the network; nothing is posted."""
    errors, warnings = _problems(settings), _problems(settings)
    for index, channel in enumerate(settings.channels):
        try:
            client = service(channel).client
        except ChatError as exc:
            errors.add("channels", "url", f"{channel.name}: {exc}", index)
            continue
        host = getattr(client, "host", None) or ""
        if not getattr(client, "secure", True) and host and not loopback(host):
            warnings.add(
                "channels",
                "url",
                f"{channel.name}: {channel.scheme}:// posts to {host} unencrypted, token and "
                f"all; use the service's secure scheme (such as {channel.scheme}s://)",
                index,
            )
    return [
        *(CheckFinding(text, fatal=True) for text in errors.items),
        *(CheckFinding(text) for text in warnings.items),
    ]


def unreadable_maildir(path: Path, access: Access = os.access) -> str | None:
    """Say why the running user cannot read a bounce Maildir and move its messages to
    .processed, or None if it can."""
    if not path.exists():
        return f"{path} does not exist; point it at the Maildir the bounces are delivered to"
    if not ((path / "new").is_dir() and (path / "cur").is_dir()):
        return f"{path} is not a Maildir (no new/ and cur/ in it); point it at one"
    done = path / ".processed"
    targets = [done / s for s in ("new", "cur")] if (done / "cur").is_dir() else [path]
    why = [f"read and write {path / s}" for s in ("new", "cur")
           if not access(path / s, os.R_OK | os.W_OK | os.X_OK)]  # fmt: skip
    why += [f"write {t}" for t in targets if not access(t, os.W_OK | os.X_OK)]
    if not why:
        return None
    return (
        f"{user()} cannot {', '.join(why)}: messages read are moved to {done}; give this user "
        "the folder (or run digest as the user that can)"
    )


def loopback(host: str) -> bool:
    """Tell whether a host name is this machine (localhost or a loopback address)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def usage_findings(settings: Settings) -> list[CheckFinding]:
    """Find settings that work but will not do what an operator wants (warnings)."""
    problems = _problems(settings)
    if settings.base_url.startswith("http://"):
        problems.add(
            "digest",
            "base_url",
            f"{settings.base_url} is not https: one-click unsubscribe (RFC 8058) needs https; "
            "serve the endpoint behind an HTTPS proxy and write its https URL here",
        )
    if settings.web_signup and settings.smtp is None:
        problems.add(
            "web",
            "signup",
            f"on, but without an [smtp] section mail goes to the Maildir {settings.outbox}: "
            "confirmation emails land where nobody reads them; add [smtp] or turn signup off",
        )
    for index, keyword in enumerate(settings.keywords):
        if keyword.local and not settings.arxiv.harvest:
            problems.add(
                "keywords",
                "local",
                f"{keyword.name!r} is matched only in the papers other keywords fetch, since "
                "[arxiv] harvest is empty: it finds nothing they do not; harvest its "
                "categories (or remove local = true, to ask arXiv for it)",
                index,
            )
    return [CheckFinding(text) for text in problems.items]


def mode_findings(settings: Settings) -> list[CheckFinding]:
    """Warn about a database (or its journals) that every user of the machine may read."""
    database = settings.database
    found = []
    for path in (database, *(database.with_name(database.name + s) for s in SIDE_FILES)):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IROTH:
            what = "every address" + ("" if settings.secret else " and the secret that signs links")
            found.append(
                CheckFinding(
                    f"{path} is readable by every user of this machine (mode "
                    f"{stat.S_IMODE(mode):04o}); it holds {what}; make it private: chmod 600 "
                    f"{path} (digest creates its files 0600)"
                )
            )
    return found


def deleted_findings(settings: Settings) -> list[CheckFinding]:
    """List subscribers.csv's rows of people who deleted their data (digest ignores them)."""
    deleted = peek_deleted(settings.database)
    if not deleted:
        return []
    try:
        rows = [
            f"line {row.line} {row.email}"
            for row in read_subscribers(settings.subscribers, settings.keywords)
            if isinstance(row, Subscriber) and address_key(row.email) in deleted
        ]
    except SubscribersError:
        return []  # the file's own problems are reported with it
    if not rows:
        return []
    return [
        CheckFinding(
            f"{settings.subscribers}: remove these rows: they asked for their data to be "
            f"deleted: {', '.join(rows)} (digest ignores them meanwhile)"
        )
    ]


def own_topic_findings(settings: Settings) -> list[CheckFinding]:
    """Name the readers' stored own topics that no longer read (after the syntax changed):
    they find nothing until fixed (warnings: the rest of their digest goes out)."""
    found = []
    for email, lines in peek_own_topics(settings.database):
        for error in topics.check(lines):
            found.append(
                CheckFinding(
                    f"{email}: the reader's line {error.line} {error.text!r} no longer reads: "
                    f"{error.message}; it finds nothing until they fix it on their manage page, "
                    "where it is marked"
                )
            )
    return found


def subscribers_source(path: Path) -> tuple[Path, tuple[Keyword, ...] | None]:
    """Return where subscribers.csv is and its keywords, from settings that failed to load.

    Whatever of the file can be read is used; the keywords are None if none can be.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = {}
    digest = data.get("digest")
    name = digest.get("subscribers") if isinstance(digest, dict) else None
    if not (isinstance(name, str) and name.strip()):
        name = SCHEMA["digest"]["subscribers"][1]
    tables = data.get("keywords")
    names = [
        t["name"].strip()
        for t in (tables if isinstance(tables, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"].strip()
    ]
    keywords = {n.casefold(): Keyword(n) for n in names}
    return path.resolve().parent / name.strip(), tuple(keywords.values()) or None


def user() -> str:
    """Return the name of the user digest runs as (the real one, as os.access sees it)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"user {os.getuid()}"


def _problems(settings: Settings) -> Problems:
    """Return a collector that names the settings file's line of each key."""
    try:
        text = settings.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    return Problems(settings.path, text)
