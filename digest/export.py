"""The reading room as a static site: every page of the live site as a file, linked relatively.

Each file is replaced in one step (a temp file, then os.replace), so a reader never sees half a
page; a file whose page is gone is removed, but only if an earlier export wrote it (the
manifest lists them), so nothing else in the folder is ever touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .archive import ArchiveError
from .config import Settings
from .files import make_folder, write_atomically
from .links import Links
from .room import ReadingRoom, RoomPage
from .store import Store

log = logging.getLogger(__name__)

MANIFEST = ".digest-site"  # the files the last export wrote, one a line
MODE = 0o644  # every file's: a web server reads them as another user


class ExportError(ArchiveError):
    """The static site cannot be written (a file in the way, no permission, a full disk)."""


@dataclass(frozen=True)
class Exported:
    """What an export did: how many pages and feeds, how many changed, how many stale went."""

    pages: int
    feeds: int
    changed: int
    removed: int


def site_files(settings: Settings, store: Store) -> Iterator[tuple[str, RoomPage]]:
    """Yield every page and feed of the static site: its file name in the folder, and it."""
    slug: str | None  # a topic's, or None for the feed of every topic
    room = ReadingRoom(settings)
    site = Links(settings.base_url).static_site()  # each file's name (with %2B for '+')
    yield "index.html", room.index(store, site.seen_from("index.html"))
    for slug in room.slugs.values():
        yield from _pages(store, site, room.topic, site.topic, slug)
    for day, sets in mailed_topics(room, store).items():
        for topics in [(), *sets]:
            yield from _pages(store, site, room.day, site.day, day, topics)
    for slug in [None, *room.slugs.values()]:
        name = site.feed(slug)
        feed = room.feed(store, site.seen_from(name), slug)
        if feed is not None:
            yield name, feed


def mailed_topics(room: ReadingRoom, store: Store) -> dict[date, list[tuple[str, ...]]]:
    """Return, for each day with news, the topic slugs of each email sent, and of each topic.

    Each edition's topics are its readers' (its "View in your browser" page); each of them
    alone too, since an email links to a topic's day page when it shows only part of it.
    """
    day_of = {c.id: day for day, cycles in room.days(store).items() for c in cycles}
    found: dict[date, list[tuple[str, ...]]] = {day: [] for day in day_of.values()}
    for cycle_id, keys in store.edition_topics():
        if cycle_id not in day_of:
            continue  # a cycle that recorded no news
        known = [room.slugs[k] for k in keys if k in room.slugs]  # not a keyword since removed
        sets = found[day_of[cycle_id]]
        whole = [tuple(known)] if len(known) == len(keys) else []
        for topics in whole + [(slug,) for slug in known]:
            if topics not in sets:
                sets.append(topics)
    return found


def _pages(
    store: Store,
    site: Links,
    render: Callable[..., RoomPage | None],
    link: Callable[..., str],
    *args: Any,
) -> Iterator[tuple[str, RoomPage]]:
    """Yield the files of a paginated page, from page 1 until there is no such page."""
    for number in count(1):
        name = unquote(link(*args, number))
        page = render(store, site.seen_from(name), *args, number)
        if page is None:
            return
        yield name, page


def export_site(settings: Settings, store: Store, folder: Path) -> Exported:
    """Write the reading room into folder as a static site; remove the files of gone pages."""
    try:
        return _export(settings, store, folder)
    except OSError as exc:
        raise ExportError(
            f"cannot write the static site into {folder} ({exc.strerror or exc}); the pages "
            "already there are whole: fix the folder or choose another, then run "
            "`digest archive --html` again"
        ) from None


def _export(settings: Settings, store: Store, folder: Path) -> Exported:
    """Write every file of the site, then the manifest, then remove the stale files."""
    make_folder(folder)
    before = _manifest(folder)
    written: list[str] = []
    pages = feeds = changed = 0
    for name, page in site_files(settings, store):
        changed += write_atomically(folder / name, page.body.encode("utf-8"), mode=MODE)
        written.append(name)
        if page.content_type == "text/html":
            pages += 1
        else:
            feeds += 1
    stale = sorted(before - set(written))
    # The manifest names every file of ours on disk until the stale ones are gone.
    write_atomically(folder / MANIFEST, _lines(before | set(written)), mode=MODE)
    for name in stale:
        _remove(folder, name)
    write_atomically(folder / MANIFEST, _lines(written), mode=MODE)
    log.info("site: %d pages, %d feeds, %d changed, %d removed", pages, feeds, changed, len(stale))
    return Exported(pages, feeds, changed, len(stale))


def _manifest(folder: Path) -> set[str]:
    """Return the files the last export wrote (only plain names inside the folder)."""
    try:
        lines = (folder / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    return {n for n in lines if n and not n.startswith("/") and ".." not in n.split("/")}


def _lines(names: Iterable[str]) -> bytes:
    """Return the manifest's text: the file names, sorted, one a line."""
    return "".join(f"{name}\n" for name in sorted(names)).encode("utf-8")


def _remove(folder: Path, name: str) -> None:
    """Remove a stale file, and the folders it leaves empty (never the site's own folder)."""
    path = folder / name
    path.unlink(missing_ok=True)
    for parent in path.parents:
        if parent == folder:
            break
        try:
            parent.rmdir()
        except OSError:  # not empty (or already gone): the folders above are not empty either
            break
