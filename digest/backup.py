"""Backups as the operator takes them (a file, or dated files in a folder kept to a number),
and a restore that waits for no one: it refuses while digest runs and keeps what it replaces."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .config import Settings
from .files import make_folder
from .lock import lock_for, service_lock
from .store import BadBackup, Snapshot, Store
from .store.backup import backup, inspect, restore, set_aside, suppressions_of

log = logging.getLogger(__name__)

NAME = "digest-%Y%m%d-%H%M%S.db"  # a backup's name in a folder: sorts by time
DATED = re.compile(r"digest-\d{8}-\d{6}\.db")


@dataclass(frozen=True)
class Restored:
    """What a restore did: the backup it wrote back, where the replaced database is kept,
    and the unsubscribes (and deletions) made since the backup that it carried over."""

    snapshot: Snapshot
    kept: Path | None  # None: there was no database to replace
    carried: dict[str, int] | None  # reason -> addresses; None: the old one was unreadable


def take(settings: Settings, where: Path, now: datetime, keep: int | None = None) -> tuple[
    Snapshot, list[Path]
]:  # fmt: skip
    """Back the database up into a file, or into a dated file in a folder (`keep` given: a
    folder, made if missing); with keep, delete all but the newest `keep` dated backups of
    that folder. Return the backup and the backups deleted."""
    if keep is not None:
        make_folder(where)
    folder = where if where.is_dir() else None
    target = folder / now.astimezone(settings.timezone).strftime(NAME) if folder else where
    snapshot = backup(settings.database, target, now)
    log.info("backup: %s to %s (%d bytes)", settings.database.name, target, snapshot.size)
    removed = rotate(folder, keep) if folder and keep else []
    return snapshot, removed


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` dated backups in a folder; return the deleted ones."""
    dated = sorted(p for p in folder.iterdir() if DATED.fullmatch(p.name) and p.is_file())
    old = dated[: max(len(dated) - keep, 0)]
    for path in old:
        path.unlink()
        log.info("backup: deleted %s (keeping the newest %d)", path, keep)
    return old


def bring_back(settings: Settings, backup_file: Path) -> Restored:
    """Restore a backup into the database's place: only while no service and no cycle uses
    it; the database replaced is kept beside it (.before-restore), and the unsubscribes,
    complaints, bounces and deletions it holds that the backup lacks are carried over."""
    database = settings.database
    if backup_file.resolve() == database.resolve():
        raise BadBackup(f"{backup_file} is the database itself: name a backup of it")
    snapshot = inspect(backup_file)  # refuse a bad file before touching anything
    with service_lock(database, exclusive=True), lock_for(database):
        keep = database.with_name(database.name + ".before-restore")
        kept = set_aside(database, keep)
        try:
            restore(snapshot, database)
        except BaseException:
            if kept:  # put the database back as it was
                set_aside(keep, database)
            raise
        carried = _carry_over(database, keep if kept else None)
    log.info("restore: %s from %s", database, backup_file)
    return Restored(snapshot, keep if kept else None, carried)


def _carry_over(database: Path, old: Path | None) -> dict[str, int] | None:
    """Open the restored database (migrating an older backup to this digest's schema); then
    suppress again whoever the replaced one kept from mail and the backup did not (an
    unsubscribe since the backup must hold), and delete again the data of those who deleted
    theirs. Return how many of each reason; None when the old database cannot be read."""
    found = suppressions_of(old) if old else []
    carried: dict[str, int] = {}
    with Store(database) as store:
        if found is None:
            return None
        known = store.suppressions()
        for key, reason, since in found:
            if known.get(key, ("",))[0] == reason:
                continue
            if reason == "deleted":
                store.forget(key, since)
            elif key in known:
                continue  # suppressed in the backup already, for another reason
            else:
                store.suppress(key, reason, since)
            carried[reason] = carried.get(reason, 0) + 1
    return carried
