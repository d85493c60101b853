"""Harvested papers stay out of the reading room (search, pages, feeds, the static site) until a
keyword finds them too."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from helpers.builders import make_paper, stored_paper
from helpers.cycles import ALAN, DAY1, GNN, cycle

from digest.config import load_settings
from digest.export import site_files
from digest.store import SCHEMA, VERSION, Store
from digest.store.schema import add_functions
from digest.web import make_app

DAY2 = DAY1 + timedelta(days=1)
NOW = DAY1
IDS = re.compile(r'<h[23]><a href="https://arxiv.org/abs/([^"]+)v\d+"')
QUOKKA = "2511.90001"


def quokka(title: str, updated):
    return make_paper(QUOKKA, title, updated, primary_category="cs.LG", categories=["cs.LG"])


def exported(settings) -> dict:
    """Return every file of the static site: index, topic and day pages, feeds."""
    with Store(settings.database) as store:
        return dict(site_files(settings, store))


async def search(client, base: str, text: str) -> tuple[list[str], str]:
    """Search the reading room; return the ids found and the line that counts them."""
    async with client.get(base + "/search", params={"q": text}) as answer:
        assert answer.status == 200
        body = await answer.text()
    return IDS.findall(body), re.search(r"(\d+) papers? for", body)[0]


async def test_a_harvested_paper_is_public_only_once_a_keyword_found_it(
    make_settings, fake_arxiv, mail_server
):
    settings = make_settings(subscribers=ALAN)
    text = settings.path.read_text(encoding="utf-8")
    settings.path.write_text(text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n'), "utf-8")
    settings = load_settings(settings.path)
    fake_arxiv.papers.append(quokka("Quokka locomotion", DAY1 - timedelta(hours=3)))
    await cycle(settings, DAY1)
    with Store(settings.database) as store:  # harvested: in the history, under harvest only
        assert store.papers([QUOKKA])
        rows = store.db.execute("SELECT keyword FROM seen WHERE paper_id = ?", [QUOKKA])
        assert {row[0] for row in rows} == {"harvest:cs.lg"}
    pages = await asyncio.to_thread(exported, settings)  # every page, topic, day and feed
    assert len(pages) > 5 and any(IDS.search(p.body) for p in pages.values())
    assert [name for name, page in pages.items() if QUOKKA in page.body] == []

    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as client:
            assert await search(client, base, "quokka") == ([], "0 papers for")
            found, _ = await search(client, base, "Lovelace")  # every fixture paper's author
            assert found and QUOKKA not in found
            fixtures = len(found)

            # the same paper, updated: now a keyword's news, and public like any other
            title = f"Quokka locomotion with a {GNN}"
            fake_arxiv.papers[-1] = quokka(title, DAY2 - timedelta(hours=2)).replace(version=2)
            report = await cycle(settings, DAY2)
            assert QUOKKA in next(k for k in report.keywords if k.keyword == GNN).new
            assert await search(client, base, "quokka") == ([QUOKKA], "1 paper for")
            found, _ = await search(client, base, "Lovelace")
            assert QUOKKA in found and len(found) == fixtures + 1
    finally:
        await server.close()


# --- the store: which papers the search leaves out, however `seen` is written -------------------

PAPERS = {  # id -> the keys that saw it
    "2511.00001": ("harvest:cs.lg",),
    "2511.00002": ("harvest:cs.lg", "topic"),
    "2511.00003": ("topic",),
    "2511.00004": ("harvest:cs.lg", "harvest:stat"),
}


def found(store: Store) -> set[str]:
    papers, total = store.search("wombat", 50, 0)
    assert total == len(papers)
    return {p.id for p in papers}


def test_only_papers_no_keyword_saw_are_left_out_whatever_the_order(tmp_path: Path):
    with Store(tmp_path / "digest.db") as store:
        papers = [stored_paper(id=i, title=f"Wombat {i}") for i in PAPERS]
        store.record_papers(papers)
        for key in ("harvest:cs.lg", "harvest:stat", "topic"):  # a harvest first, then a keyword
            seen = [p for p in papers if key in PAPERS[p.id]]
            store.record_keyword(key, seen, 1, NOW, None, news=[p.id for p in seen])
        assert found(store) == {"2511.00002", "2511.00003"}
        # a keyword that later finds a harvested paper makes it public
        store.record_keyword("other", papers[:1], 2, NOW, None)
        assert found(store) == {"2511.00001", "2511.00002", "2511.00003"}
        # a keyword's row removed: harvested only again; a paper removed: nothing stale is left
        store.db.execute("DELETE FROM seen WHERE keyword = 'other'")
        assert found(store) == {"2511.00002", "2511.00003"}
        store.db.execute("DELETE FROM seen WHERE paper_id = '2511.00004'")
        store.db.execute("DELETE FROM papers WHERE id = '2511.00004'")
        assert store.db.execute("SELECT count(*) FROM harvest_only").fetchone()[0] == 1


def test_the_migration_finds_the_papers_harvested_before_it(tmp_path: Path):
    path = tmp_path / "digest.db"
    before = next(i for i, script in enumerate(SCHEMA) if "harvest_only" in script)
    conn = sqlite3.connect(path)
    add_functions(conn)  # what the migrations call
    conn.execute("PRAGMA synchronous = OFF")  # a file the test throws away
    for script in SCHEMA[:before]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {before}")
    stamp = NOW.isoformat()
    for paper_id, keys in PAPERS.items():
        conn.execute(
            "INSERT INTO papers (id, version, title, authors, abstract, published, updated, "
            "primary_category, categories) VALUES (?, 1, ?, '[]', '', ?, ?, 'cs.LG', '[]')",
            [paper_id, f"Wombat {paper_id}", stamp, stamp],
        )
        for key in keys:
            conn.execute(
                "INSERT INTO seen (keyword, paper_id, cycle_id, first_seen, news) "
                "VALUES (?, ?, 1, ?, 0)",
                [key, paper_id, stamp],
            )
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert found(store) == {"2511.00002", "2511.00003"}
