"""The reading room against a long history (make bench; alone: bench/bench.py --reading-only).

1. Writes a history of 100,000 papers over 200 daily cycles and 5 keywords with the Store's own
   API (bench/history.py), runs `digest serve` on it in its own process, and measures from an
   aiohttp client with a few connections the requests per second of /healthz, keyword pages,
   day pages, feeds and search, each in the same round as /healthz. The app keeps rendered pages
   in memory until a cycle records news, so these are mostly answered from its cache; the first
   (uncached) request of each page is timed apart, and so are rounds where no request repeats.
2. The FTS index's size (dbstat), and the database's.
3. A cycle's diff and archive steps (and its recording of the news, FTS rows and all) with
   100,000 papers in the history against the same with 1,000.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote_plus

from history import FIRST_CYCLE, KEYWORDS, Writer, phrases, unique_queries, write_history

SECRET = "a benchmark secret of at least thirty-two bytes"  # no write for a kept secret
HISTORY_VERSION = 1  # bump when bench/history.py writes other papers (a kept --reading-db)
SEEN, NEW = 200, 300  # the diff's fetch: papers of the history, and new ones
DIFFS = 5  # diff_keyword calls a repetition (it takes about a millisecond)
UNCACHED = ("topic, no cache", "search, no cache")  # measures where no request repeats
FIRST = {  # the first requests timed: URLs set -> label
    "index": "front page",
    "topic": "topic pages 1-50",
    "deep": "topic pages 51-last",
    "day": "day pages",
    "feed": "feeds",
    "search": "searches",
}


@dataclasses.dataclass
class Options:
    """How much to measure (bench.py's --reading-* options)."""

    papers: int = 100_000
    small: int = 1_000
    cycles: int = 200
    seconds: float = 5.0
    rounds: int = 3
    concurrency: int = 16
    steps: int = 21
    keep: Path | None = None  # reuse the databases written here by an earlier run


def settings_text(database: Path, archive: Path, port: int) -> str:
    """Return a settings.toml serving `database` on 127.0.0.1:port."""
    keywords = "".join(f'[[keywords]]\nname = "{k}"\n' for k in KEYWORDS)
    return (
        f'[digest]\nname = "Daily Papers"\ndatabase = "{database}"\narchive = "{archive}"\n'
        'base_url = "https://papers.example.org"\ntimezone = "UTC"\n'
        f'{keywords}[web]\nlisten = "127.0.0.1:{port}"\n'
    )


# --- the databases -----------------------------------------------------------------------------


def databases(folder: Path, options: Options, say: Callable[[str], None]):
    """Write (or reuse, with --reading-db) the large and the small history.

    Return their paths, and the seconds each one written now took.
    """
    found, built = {}, {}
    for name, papers, cycles in (
        ("large", options.papers, options.cycles),
        ("small", options.small, max(1, options.cycles * options.small // options.papers)),
    ):
        path = folder / f"{name}.db"
        stamp = folder / f"{name}.json"
        wanted = {"papers": papers, "cycles": cycles, "version": HISTORY_VERSION}
        kept = json.loads(stamp.read_text()) if stamp.exists() else {}
        if path.exists() and all(kept.get(k) == v for k, v in wanted.items()):
            say(f"reading room: reusing {path} ({papers:,} papers)")
        else:
            for old in folder.glob(f"{name}.db*"):
                old.unlink()
            say(f"reading room: writing {papers:,} papers over {cycles} cycles to {path} ...")
            started = time.perf_counter()
            write_history(path, papers, cycles)
            built[name] = time.perf_counter() - started
            stamp.write_text(json.dumps(wanted))
        with sqlite3.connect(path) as conn:  # one file, no WAL: the size is the file's
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        found[name] = path
    return found, built


def sizes(database: Path) -> dict[str, float]:
    """Return the bytes of the FTS index, the papers, the history and the whole database."""
    conn = sqlite3.connect(database)
    try:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        found = {"total": page * conn.execute("PRAGMA page_count").fetchone()[0]}
        found["text"] = conn.execute(
            "SELECT sum(length(title) + length(abstract) + length(authors)) FROM papers"
        ).fetchone()[0]
        try:
            tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        except sqlite3.OperationalError:  # no dbstat: the FTS index is what dropping it frees
            return found | {"fts": without_fts(database)}
    finally:
        conn.close()
    found["fts"] = sum(v for k, v in tables.items() if k.startswith("papers_fts"))
    found["papers"] = tables.get("papers", 0) + tables.get("sqlite_autoindex_papers_1", 0)
    found["seen"] = sum(
        v for k, v in tables.items() if k.startswith(("seen", "sqlite_autoindex_seen"))
    )
    return found


def without_fts(database: Path) -> int:
    """Return how much smaller a vacuumed copy of the database is without its FTS table."""
    copy = database.with_name("no-fts.db")
    shutil.copyfile(database, copy)
    try:
        conn = sqlite3.connect(copy, isolation_level=None)
        conn.execute("VACUUM")
        before = copy.stat().st_size
        conn.execute("DROP TABLE papers_fts")
        conn.execute("VACUUM")
        conn.close()
        return before - copy.stat().st_size
    finally:
        copy.unlink()


# --- the web app under load ---------------------------------------------------------------------


def start_server(folder: Path, settings: Path, port: int) -> subprocess.Popen:
    """Run `digest serve` in its own process; return once /healthz answers."""
    import urllib.request

    log = open(folder / "serve.log", "w")  # noqa: SIM115 (the child writes it)
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "-q", "--config", str(settings), "serve"],
        stdout=log,
        stderr=log,
        env={**os.environ, "DIGEST_SECRET": SECRET},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"digest serve exited: {(folder / 'serve.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("digest serve did not answer /healthz within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    """Stop the server as systemd would (SIGTERM)."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process (all its threads) has used; NaN where /proc is not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hammer(session, base: str, urls, seconds: float, concurrency: int, pid: int) -> dict:
    """Request `urls` in turn from `concurrency` connections for `seconds`.

    Return the answers per second, the errors, and how busy the server and this client were
    (the share of one core each), which tells whether the server was the bottleneck.
    """
    import aiohttp

    source = itertools.cycle(urls)  # shared: the URLs are visited in order
    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            try:
                async with session.get(base + next(source)) as response:
                    await response.read()
                    done += response.status == 200
                    errors += response.status != 200
            except aiohttp.ClientError:
                errors += 1

    server, client, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "rps": done / elapsed,
        "errors": errors,
        "server_cpu": (cpu_seconds(pid) - server) / elapsed,
        "client_cpu": (time.process_time() - client) / elapsed,
    }


async def first_requests(session, base: str, urls: list[str]) -> tuple[list[float], list[int]]:
    """Request each URL once, one after the other; return each one's seconds and bytes."""
    seconds, sizes = [], []
    for url in urls:
        started = time.perf_counter()
        async with session.get(base + url) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status}")
        seconds.append(time.perf_counter() - started)
        sizes.append(len(body))
    return seconds, sizes


def url_sets(settings: Path, options: Options) -> dict[str, list[str]]:
    """Return the URLs of each measure: the cached sets, the first-request samples, the rest."""
    from digest.config import load_settings
    from digest.room import PAGE_SIZE, ReadingRoom
    from digest.store import Store

    served = load_settings(settings, env={"DIGEST_SECRET": SECRET})
    keys = ReadingRoom(served).slugs  # key -> slug, as the pages name them
    with Store(served.database) as store:
        pages = {slug: -(-store.keyword_size(key) // PAGE_SIZE) for key, slug in keys.items()}
    names = list(keys.values())
    many = len(names)
    days = [(FIRST_CYCLE + timedelta(days=n)).date().isoformat() for n in range(options.cycles)]
    recent = days[::-1][:30]  # the days the front page links to
    deep = [(s, n) for n in range(51, max(pages.values()) + 1) for s in names if n <= pages[s]]
    sample = deep[:: max(1, len(deep) // 25)][:25]  # first requests, across the whole depth
    return {
        "healthz": ["/healthz"],
        "index": ["/"],
        "topic": [f"/topics/{s}?page={n}" for n in range(1, 51) for s in names if n <= pages[s]],
        "day": [
            f"/days/{d}{topics}"
            for i, d in enumerate(recent)
            for topics in ("", f"/{names[i % many]}", f"/{names[i % many]}+{names[(i + 2) % many]}")
        ],
        "feed": [f"/feeds/{s}.atom" for s in [*names, "all"]],
        "search": [f"/search?q={quote_plus(q)}" for q in phrases()],
        "deep": [f"/topics/{s}?page={n}" for s, n in sample],
        "topic, no cache": [f"/topics/{s}?page={n}" for s, n in deep if (s, n) not in sample],
        "search, no cache": [f"/search?q={quote_plus(q)}" for q in unique_queries(3000)],
    }


async def load(base: str, urls: dict[str, list[str]], options: Options, pid: int, say) -> dict:
    """Time the first requests, then rounds of each measure beside /healthz."""
    import aiohttp

    from digest.web.room_routes import CACHE_SIZE

    cached = ["healthz", "topic", "day", "feed", "search"]
    # Visited in order, a pool larger than the cache never finds a page still in it.
    uncached = ["healthz", *(n for n in UNCACHED if len(urls[n]) > CACHE_SIZE)]
    first: dict[str, tuple[list[float], list[int]]] = {}
    rounds: dict[str, list[dict]] = {}  # measure -> one hammer() result a round
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        say("reading room: first (uncached) requests, one at a time ...")
        for name in FIRST:
            if urls[name]:
                first[name] = await first_requests(session, base, urls[name])
        for group in (cached, uncached):
            for number in range(options.rounds):
                order = group[number % len(group) :] + group[: number % len(group)]
                say(
                    f"reading room: round {number + 1}/{options.rounds}, {options.seconds:g} s "
                    f"each, {options.concurrency} connections: {', '.join(order)} ..."
                )
                got = {}
                for name in order:
                    got[name] = await hammer(
                        session, base, urls[name], options.seconds, options.concurrency, pid
                    )
                for name in group:
                    got[name]["healthz"] = got["healthz"]["rps"]  # for the ratio
                    rounds.setdefault(name, []).append(got[name])
    return {"first": first, "rounds": rounds}


# --- 3. the cycle's steps against the history's size ------------------------------------------


def cycle_steps(folder: Path, paths: dict[str, Path], options: Options, say) -> dict:
    """Time diff_keyword, write_archive and recording a cycle's news on copies of both histories.

    Each repetition times every step on both histories, one right after the other, so that
    their ratio is measured in the same moment of a noisy machine; what a repetition records,
    it deletes again (untimed), so both histories keep their size.
    """
    from digest.config import Keyword, load_settings
    from digest.pipeline import write_archive
    from digest.store import Store

    key, query = KEYWORDS[0].casefold(), Keyword(KEYWORDS[0]).search_query()
    writer = Writer(seed=23)
    stores, settings, fetches = {}, {}, {}
    times: dict[str, dict[str, list[float]]] = {}  # history -> step -> seconds, a repetition each
    for name, path in paths.items():
        copy = folder / f"steps-{name}.db"  # the record step writes: keep the history as it is
        shutil.copyfile(path, copy)
        toml = folder / f"steps-{name}.toml"
        toml.write_text(settings_text(copy, folder / f"archive-{name}" / "README.md", 8080))
        settings[name] = load_settings(toml, env={"DIGEST_SECRET": SECRET})
        stores[name] = store = Store(copy)
        seen = store.recent_papers(key, SEEN)
        newest = max(p.updated for p in seen)
        made = (writer.paper(KEYWORDS[0], newest + timedelta(minutes=i + 1)) for i in range(NEW))
        fresh = [dataclasses.replace(p, id=f"9001.{i:05d}") for i, p in enumerate(made)]
        fetches[name] = (sorted(fresh + seen, key=lambda p: p.updated, reverse=True), newest)
        times[name] = {"diff": [], "archive": [], "queries": [], "record": []}
    say(f"cycle steps: {options.steps} repetitions on {len(paths)} histories ...")
    names = list(paths)
    for rep in range(options.steps):
        now = FIRST_CYCLE + timedelta(days=options.cycles + rep)  # the archive changes each time
        for name in names if rep % 2 == 0 else names[::-1]:
            store, step = stores[name], times[name]
            fetched, newest = fetches[name]
            diffs = []
            for _ in range(DIFFS):
                started = time.perf_counter()
                diff = store.diff_keyword(key, fetched, newest - timedelta(days=3))
                diffs.append(time.perf_counter() - started)
                assert len(diff.new) == NEW and diff.late == 0, diff
            step["diff"].append(statistics.median(diffs))
            started = time.perf_counter()
            write_archive(settings[name], store, now)
            step["archive"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for keyword in settings[name].keywords:
                store.recent_papers(keyword.key, settings[name].archive_rows)
            step["queries"].append(time.perf_counter() - started)
            # Recording a cycle's news: the new papers (and their FTS rows), the keyword's seen.
            batch = [
                dataclasses.replace(p, id=f"9100.{i:05d}", updated=now - timedelta(hours=1))
                for i, p in enumerate(fetched[:NEW])
            ]
            started = time.perf_counter()
            cycle_id = store.begin_cycle(now)
            store.record_papers(batch)
            store.record_keyword(key, batch, cycle_id, now, query, [p.id for p in batch])
            store.mark_planned(cycle_id, now)
            step["record"].append(time.perf_counter() - started)
            with store.transaction():  # and undone, so the next repetition finds the same history
                store.db.execute("DELETE FROM seen WHERE cycle_id = ?", [cycle_id])
                store.db.execute("DELETE FROM papers WHERE id LIKE '9100.%'")
                store.db.execute("DELETE FROM cycles WHERE id = ?", [cycle_id])
    for store in stores.values():
        store.close()
    return times


# --- orchestration and report ------------------------------------------------------------------


def run(folder: Path, options: Options, port: int, say=print) -> dict:
    """Run the whole reading-room section; return its figures."""
    started = time.perf_counter()
    keep = options.keep or folder
    keep.mkdir(parents=True, exist_ok=True)
    paths, built = databases(keep, options, say)
    found = {"size": sizes(paths["large"]), "papers": options.papers}
    found["built"] = built.get("large")
    settings = folder / "serve.toml"
    # No rate per client network: every connection comes from 127.0.0.1 (bench/abuse.py has it)
    text = settings_text(paths["large"], folder / "archive.md", port) + "room_rate = 0\n"
    settings.write_text(text)
    urls = url_sets(settings, options)
    say(f"reading room: digest serve on 127.0.0.1:{port} ...")
    server = start_server(folder, settings, port)
    try:
        found |= asyncio.run(load(f"http://127.0.0.1:{port}", urls, options, server.pid, say))
    finally:
        stop_server(server)
    found["steps"] = cycle_steps(folder, paths, options, say)
    found["seconds"] = time.perf_counter() - started
    return found


def report(found: dict, options: Options) -> None:
    """Print the figures: req/s and ratios, first-request latencies, sizes, cycle steps."""
    rounds, first = found["rounds"], found["first"]
    print()
    print(
        f"reading room: {options.papers:,} papers, {options.cycles} days, {len(KEYWORDS)} "
        f"keywords; `digest serve` in its own process, an aiohttp client with "
        f"{options.concurrency} connections, {options.seconds:g} s a measure; medians of "
        f"{options.rounds} round(s) (range in brackets), each ratio to /healthz of the same "
        "round; CPU: the share of one core the server and the client used"
    )
    for name in ["healthz", *(n for n in rounds if n != "healthz")]:
        rps = [r["rps"] for r in rounds[name]]
        errors = sum(r["errors"] for r in rounds[name])
        server = statistics.median(r["server_cpu"] for r in rounds[name])
        client = statistics.median(r["client_cpu"] for r in rounds[name])
        print(
            f"  {name:<22}{statistics.median(rps):8.1f} req/s  [{min(rps):.0f}-{max(rps):.0f}]"
            f"  CPU server {server:.0%}, client {client:.0%}"
            + (f"; {errors} ERRORS" if errors else "")
        )
    print("  first request of each page (not cached), one at a time; median [90th pct, max]:")
    for name, label in FIRST.items():
        if name not in first:
            continue
        ms = sorted(1000 * s for s in first[name][0])
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        kb = statistics.mean(first[name][1]) / 1024
        print(
            f"  {label:<22}{statistics.median(ms):8.1f} ms     [{p90:.0f}, {ms[-1]:.0f}] "
            f"over {len(ms)} distinct URL(s) of {kb:.0f} KB"
        )
    size = found["size"]
    mb = 1024 * 1024
    parts = [f"FTS index {size['fts'] / mb:.1f} MB"]
    parts += [f"{name} {size[name] / mb:.1f} MB" for name in ("papers", "seen") if name in size]
    print(
        f"  database {size['total'] / mb:.0f} MB: {', '.join(parts)}; the indexed text "
        f"(titles, abstracts, authors) {size['text'] / mb:.0f} MB, "
        f"{size['text'] / found['papers']:.0f} B a paper"
    )
    steps = found["steps"]
    large, small = steps["large"], steps["small"]
    ratios = {s: [a / b for a, b in zip(large[s], small[s], strict=True)] for s in large}
    print(
        f"  cycle steps, history of {options.papers:,} vs {options.small:,} papers: medians of "
        f"{options.steps} repetitions, each timing both; ratio: the median of their ratios"
    )
    for step, label in (
        ("diff", f"diff ({SEEN} seen + {NEW} new)"),
        ("archive", "write_archive"),
        ("queries", "  its queries"),
        ("record", f"record {NEW} new papers"),
    ):
        print(
            f"  {label:<26}{1000 * statistics.median(large[step]):8.2f} ms vs "
            f"{1000 * statistics.median(small[step]):.2f} ms  ratio "
            f"{statistics.median(ratios[step]):.2f} [{min(ratios[step]):.2f}-"
            f"{max(ratios[step]):.2f}]"
        )
    built = found["built"]
    written = (
        f"writing the large history {built:.0f} s of it" if built else "reusing the kept history"
    )
    print(f"  (the section took {found['seconds']:.0f} s, {written})")
    ratio = {n: statistics.median(r["rps"] / r["healthz"] for r in rs) for n, rs in rounds.items()}
    checks = [
        (f"{name} / healthz", ratio[name], ">= 0.5", lambda v: v >= 0.5)
        for name in ("topic", "day", "feed", "search")
    ]
    checks += [
        (f"{name} / healthz", ratio[name], "none (no repeats)", None)
        for name in UNCACHED
        if name in ratio
    ]
    checks.append(
        ("FTS index, B a paper", size["fts"] / found["papers"], "none (for the record)", None)
    )
    history = f"{options.papers // 1000}k / {options.small // 1000}k history"
    both = [
        (ld + la) / (sd + sa)
        for ld, la, sd, sa in zip(
            large["diff"], large["archive"], small["diff"], small["archive"], strict=True
        )
    ]
    checks.append(
        (f"diff + archive: {history}", statistics.median(both), "<= 1.1", lambda v: v <= 1.1)
    )
    for step in ("diff", "archive", "record"):  # each, for the record (the diff is ~1 ms)
        checks.append((f"{step}: {history}", statistics.median(ratios[step]), "none", None))
    for name, value, target, ok in checks:
        verdict = "" if ok is None else "ok" if ok(value) else "MISSED"
        print(f"  {name:<26}{value:8.2f}   target {target:<22} {verdict}".rstrip())
