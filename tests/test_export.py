"""The static site: the live reading room's pages as files, linked relatively, kept current."""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.builders import changed, make_paper
from helpers.cycles import DAY1, recording
from helpers.fake_arxiv import busy_papers

from digest.cli import main
from digest.export import MANIFEST, export_site
from digest.links import Links
from digest.pipeline import run_once
from digest.room import ReadingRoom
from digest.store import Store

DAY2 = DAY1 + timedelta(days=1)
DIFF, GNN, LLM = (
    "diffusion-model-for-recommendation",
    "graph-neural-network",
    "large-language-model",
)
ATOM = "{http://www.w3.org/2005/Atom}"
HREF_RE = re.compile(r'href="([^"]*)"')
ABS_RE = re.compile(r'<h[23]><a href="https://arxiv\.org/abs/([^"]+)v\d+"')

# Day 1 mails the 20 fixture papers: Ada gets every topic, Alan GNN, Grace diffusion and LLM.
# Day 2 mails 110 GNN papers and one LLM paper to the same three, each email linking to the
# day page of the topics its reader follows. Each of those sets has its day page, and so has
# each topic of it alone; pages hold 50 papers of a topic, 100 of a day.
SITE = {
    "index.html",
    *(f"topics/{DIFF}/index.html", f"topics/{LLM}/index.html"),
    *(f"topics/{GNN}/{name}" for name in ("index.html", "page-2.html", "page-3.html")),
    *(
        f"days/2025-11-16/{topics}index.html"
        for topics in (
            "",
            f"{DIFF}+{GNN}+{LLM}/",
            f"{DIFF}+{LLM}/",
            f"{DIFF}/",
            f"{GNN}/",
            f"{LLM}/",
        )
    ),
    *(
        f"days/2025-11-17/{topics}{name}"
        for topics in ("", f"{DIFF}+{GNN}+{LLM}/", f"{GNN}/")
        for name in ("index.html", "page-2.html")
    ),
    *(f"days/2025-11-17/{topics}/index.html" for topics in (f"{DIFF}+{LLM}", LLM, DIFF)),
    *(f"feeds/{name}.atom" for name in ("all", DIFF, GNN, LLM)),
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def files(folder: Path) -> dict[str, bytes]:
    """Return every file under the folder by its path in it, with its contents."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def target(name: str, href: str) -> str:
    """Return the site file a relative link of the file `name` points to."""
    path = posixpath.join(posixpath.dirname(name), href.split("#")[0].replace("%2B", "+"))
    return posixpath.normpath(path)


def live_url(name: str) -> str:
    """Return the live site's address of an exported file."""
    if name == "index.html":
        return "/"
    if name.startswith("feeds/"):
        return "/" + name
    folder, file = posixpath.split(name)
    page = 1 if file == "index.html" else int(file.removeprefix("page-").removesuffix(".html"))
    return "/" + folder + (f"?page={page}" if page > 1 else "")


def relinked(name: str, html: str) -> str:
    """Return an exported page with each relative link turned into the live site's address."""

    def live(match: re.Match) -> str:
        href, _, fragment = match[1].partition("#")
        if href.startswith("https://"):
            return match[0]
        return f'href="{live_url(target(name, href))}' + (f"#{fragment}" if fragment else "") + '"'

    return HREF_RE.sub(live, html)


def live_page(room: ReadingRoom, store: Store, name: str) -> str:
    """Render the live page an exported file is, with the server's links but no search."""

    class NoSearch(Links):
        def search(self) -> None:
            return None

    links = NoSearch(room.settings.base_url, root="")  # the live pages' links, no host
    parts = name.split("/")
    page = 1 if parts[-1] == "index.html" else int(parts[-1][5:-5])
    if name == "index.html":
        rendered = room.index(store, links)
    elif parts[0] == "topics":
        rendered = room.topic(store, links, parts[1], page)
    else:
        topics = parts[2].split("+") if len(parts) == 4 else []
        rendered = room.day(store, links, date.fromisoformat(parts[1]), topics, page)
    assert rendered is not None, name
    return rendered.body


def two_days_exported(settings, fake, folder: Path):
    """Run two daily cycles and export the site with `digest archive --html`."""
    cycles = changed(settings, first_run_days=600)  # day 1 mails the whole fixture
    assert run_once(cycles, clock=lambda: DAY1).ok
    fake.papers += busy_papers(110, "Graph Neural Network", newest=DAY2 - timedelta(hours=1))
    fake.papers.append(make_paper("2511.20003", "Large Language Model Routing", DAY2))
    assert run_once(cycles, clock=lambda: DAY2 + timedelta(hours=1)).ok
    result = invoke("--config", str(settings.path), "archive", "--html", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"wrote {settings.archive}; {len(SITE) - 4} pages and 4 feeds in {folder}/ "
        f"({len(SITE)} changed, 0 removed)\n"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory, fixture_papers):
    """The site of two days, exported once for the tests that only read it."""
    folder = tmp_path_factory.mktemp("export")
    with recording(folder, fixture_papers, smtp=False) as (settings, fake, _):
        two_days_exported(settings, fake, folder / "site")
    return settings, folder / "site"


@pytest.fixture
def own_site(make_settings, fake_arxiv, tmp_path):
    """The site of two days, for a test that exports it again."""
    settings = make_settings(smtp=False)
    two_days_exported(settings, fake_arxiv, tmp_path / "site")
    return settings, tmp_path / "site"


def test_the_site_has_every_page_and_feed_and_nothing_else(site):
    settings, folder = site
    assert set(files(folder)) == SITE | {MANIFEST}
    assert (folder / MANIFEST).read_text().splitlines() == sorted(SITE)
    assert settings.archive.exists()


def test_every_link_is_relative_and_leads_to_an_exported_file(site):
    _, folder = site
    exported = files(folder)
    checked = 0
    for name in (n for n in exported if n.endswith(".html")):
        for href in HREF_RE.findall(exported[name].decode()):
            if href.startswith("https://"):
                assert href.startswith(("https://arxiv.org/", "https://doi.org/")), (name, href)
                continue
            assert not href.startswith(("/", "http:")) and "+" not in href, (name, href)
            assert target(name, href) in exported, (name, href)
            checked += 1
    assert checked > 100
    topic = exported[f"topics/{GNN}/page-2.html"].decode()
    assert 'href="../../index.html"' in topic and 'href="../../feeds/all.atom"' in topic
    assert 'rel="prev" href="../../topics/graph-neural-network/index.html"' in topic
    assert "/search" not in topic and 'role="search"' not in topic  # a static site has none


def test_the_pages_are_the_live_pages_with_relative_links(site):
    settings, folder = site
    exported = files(folder)
    room = ReadingRoom(settings)
    with Store(settings.database) as store:
        for name in (n for n in exported if n.endswith(".html")):
            assert relinked(name, exported[name].decode()) == live_page(room, store, name), name


def test_the_pages_hold_the_papers_of_the_history(site):
    settings, folder = site
    exported = files(folder)

    def ids(prefix: str) -> list[str]:
        pages = sorted((n for n in exported if n.startswith(prefix)), key=lambda n: (len(n), n))
        return [i for n in pages for i in ABS_RE.findall(exported[n].decode())]

    with Store(settings.database) as store:
        for keyword, slug in zip(settings.keywords, (DIFF, GNN, LLM), strict=True):
            query = "SELECT paper_id FROM seen WHERE keyword = ?"
            seen = {r[0] for r in store.db.execute(query, [keyword.key])}
            shown = ids(f"topics/{slug}/")
            assert len(shown) == len(seen) and set(shown) == seen, slug
        for day, (cycle_id,) in zip(
            ("2025-11-16", "2025-11-17"),
            store.db.execute("SELECT id FROM cycles ORDER BY id"),
            strict=True,
        ):
            news = {
                r[0]
                for r in store.db.execute(
                    "SELECT paper_id FROM seen WHERE cycle_id = ? AND news = 1", [cycle_id]
                )
            }
            assert set(ids(f"days/{day}/index.html") + ids(f"days/{day}/page-")) == news
    assert len(ids("days/2025-11-17/index.html") + ids("days/2025-11-17/page-")) == 111
    assert ids(f"days/2025-11-17/{LLM}/") == ["2511.20003"]


def test_the_feeds_are_atom_linking_into_the_site(site):
    settings, folder = site
    with Store(settings.database) as store:
        for slug, key in (
            (None, None),
            (GNN, settings.keywords[1].key),
            (LLM, settings.keywords[2].key),
        ):
            name = f"feeds/{slug or 'all'}.atom"
            root = ET.parse(folder / name).getroot()
            assert root.tag == f"{ATOM}feed"
            assert root.findtext(f"{ATOM}id") == f"https://papers.example.org/feeds/{slug or 'all'}"
            links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
            assert target(name, links["self"]) == name
            assert target(name, links["alternate"]) == "index.html"
            entries = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
            expected = [f"https://arxiv.org/abs/{p.id}" for p, _ in store.feed(key, 50)]
            assert entries == expected and len(entries) == (7 if slug == LLM else 50)


def test_exporting_again_changes_nothing(own_site):
    settings, folder = own_site
    before = {n: (folder / n).stat().st_mtime_ns for n in files(folder)}
    contents = files(folder)
    with Store(settings.database) as store:
        done = export_site(settings, store, folder)
    assert files(folder) == contents
    assert {n: (folder / n).stat().st_mtime_ns for n in files(folder)} == before
    assert (done.pages, done.feeds, done.changed, done.removed) == (len(SITE) - 4, 4, 0, 0)


def test_pages_that_are_gone_are_removed_but_nothing_else(own_site):
    settings, folder = own_site
    (folder / "CNAME").write_text("papers.example.org\n")
    (folder / "topics" / "notes.html").write_text("mine")
    fewer = changed(settings, keywords=settings.keywords[:2])  # LLM no longer a topic
    with Store(settings.database) as store:
        done = export_site(fewer, store, folder)
    gone = {n for n in SITE if LLM in n}
    assert set(files(folder)) == (SITE - gone) | {MANIFEST, "CNAME", "topics/notes.html"}
    assert done.removed == len(gone) == 9
    assert (
        not (folder / "topics" / LLM).exists() and not (folder / "days/2025-11-17" / LLM).exists()
    )
    assert (folder / "days/2025-11-17" / GNN).is_dir()
    assert not list(folder.rglob("*.tmp"))


def test_an_unwritable_folder_is_one_line(make_settings, tmp_path):
    settings = make_settings(smtp=False)
    (tmp_path / "file").write_text("in the way")
    for where in (tmp_path / "file" / "site", tmp_path / "file"):
        result = invoke("--config", str(settings.path), "-q", "archive", "--html", str(where))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"digest: cannot write the static site into {where} ({tmp_path / 'file'} is a "
            "file, not a folder); the pages already there are whole: fix the folder or choose "
            "another, then run `digest archive --html` again\n"
        )
