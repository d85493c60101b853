"""Planning with readers' own topics (alone: python bench/plan_own.py).

10,000 subscribers.csv rows over bench/plan_mix.py's keyword sets, its week of history, and
today's 2,000 harvested papers (titles and abstracts drawn, Zipf-like, from 3,000 made-up terms;
the keywords' own papers as plan_mix's). Measured each in its own process on a fresh copy:
  1. without own topics (the same harvest: what planning costs with nobody's topics);
  2. every reader with 5 own topic lines (50,000), 30 % of them drawn from 200 lines shared
     across readers, the rest their own: two terms of the rarer 2,800 (a few papers a day
     each) or an author;
  3. the same, on a day when the keywords have no news: planning must match every reader's
     lines to know who gets mail (a reader with keyword news gets mail anyway: their own
     topics are matched when their digest is made, as it is sent);
and, apart, matching the 50,000 lines alone over the day's papers (one in-memory index, each
distinct query once), and making the 10,000 personal digests of run 2 from their stored orders,
as the send phase does (bodies.Bodies, rendering included). Prints the times, their ratio, peak
RSS and distinct editions.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plan_mix  # the shared bench data: keyword sets and history
from peak import peak_mb  # this process's own peak RSS

READERS, LINES, SHARED, PAPERS = 10_000, 5, 0.30, 2_000
QUIET = "quiet.txt"  # in a folder whose keywords have no news today
TERMS = [f"term{i}" for i in range(3_000)]
WEIGHTS = [1 / (i + 10) for i in range(len(TERMS))]  # a few common terms, many rare


def harvested(now: datetime) -> list:
    """Return today's harvested papers (the same every run)."""
    from digest.models import Paper

    rng = random.Random(5)
    return [
        Paper(
            id=f"2611.9{i:04d}",
            version=1,
            title=" ".join(rng.choices(TERMS, WEIGHTS, k=10)),
            authors=(f"Author {rng.randrange(5000)}", f"Author {rng.randrange(5000)}"),
            abstract=" ".join(rng.choices(TERMS, WEIGHTS, k=150)),
            comment=None,
            published=now - timedelta(hours=1 + i / 100),
            updated=now - timedelta(hours=1 + i / 100),
            primary_category="cs.LG",
            categories=("cs.LG",),
        )
        for i in range(PAPERS)
    ]


def lines_of(rng: random.Random, shared: list[str]) -> list[str]:
    """Return one reader's own topic lines."""
    found: list[str] = []
    while len(found) < LINES:
        if rng.random() < SHARED:
            line = rng.choice(shared)
        elif rng.random() < 0.8:
            line = " ".join(rng.choices(TERMS[200:], k=2))
        else:
            line = f'au:"Author {rng.randrange(5000)}"'
        if line not in found:
            found.append(line)
    return found


def all_lines() -> list[list[str]]:
    """Return every reader's lines (the same every run)."""
    rng = random.Random(7)
    shared = [" ".join(rng.choices(TERMS[200:], k=2)) for _ in range(200)]
    return [lines_of(rng, shared) for _ in range(READERS)]


def build(folder: Path, now: datetime, own: bool, alone: bool = False) -> None:
    """Write plan_mix's baseline folder, harvesting cs.LG, with or without own topics
    (`alone`: the keywords have no news today, only the harvest)."""
    from digest.store import Store

    plan_mix.build(folder, plan_mix.Options(subscribers=READERS, web=0), now, mixed=False)
    if alone:
        (folder / QUIET).write_text("the keywords have no news today\n")
    settings = folder / "settings.toml"
    text = settings.read_text().replace(
        "[[keywords]]", '[arxiv]\nharvest = ["cs.LG"]\n[[keywords]]', 1
    )
    settings.write_text(text)
    if own:
        with Store(folder / "digest.db") as store, store.transaction():
            for i, lines in enumerate(all_lines()):
                email = f"user{i:06d}@example.org"
                store.save_own_topics(email, f"User {i}", "csv", lines, now - timedelta(days=9))


def child(folder: Path, make: bool = False) -> None:
    """Plan today's cycle in `folder` and print JSON (`make`: then make every personal digest
    from its order, as the send phase does, and time that too)."""
    from digest.bodies import Bodies
    from digest.config import load_settings
    from digest.fetch import Fetched, FetchWindow
    from digest.models import KeywordResult
    from digest.planning import plan
    from digest.store import Store

    settings = load_settings(folder / "settings.toml", env={"DIGEST_SECRET": plan_mix.SECRET})
    now = datetime.fromisoformat((folder / "now.txt").read_text())
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        cycle_id = store.begin_cycle(now)
        window = FetchWindow(now - timedelta(days=3))
        found = {k: Fetched(window, p) for k, p in plan_mix.papers_of(0, now).items()}
        if (folder / QUIET).exists():
            found = {k: Fetched(window, []) for k in found}
        found["harvest:cs.lg"] = Fetched(window, harvested(now))
        results = [KeywordResult(k.name) for k in settings.fetched_keywords]
        started = time.perf_counter()
        planning = plan(settings, store, found, results, cycle_id, now, secret)
        seconds = time.perf_counter() - started
        size, recipes, recipes_size = store.db.execute(
            "SELECT sum(length(text) + length(html)), count(recipe), sum(length(recipe)) "
            "FROM editions WHERE cycle_id = ?",
            [cycle_id],
        ).fetchone()
        plan_rss = peak_mb()
        made = 0.0
        if make:
            ids = [row[0] for row in store.db.execute(
                "SELECT id FROM editions WHERE cycle_id = ? AND recipe IS NOT NULL", [cycle_id]
            )]  # fmt: skip
            bodies = Bodies(settings, store)
            started = time.perf_counter()
            for edition_id in ids:
                bodies.edition(edition_id)
            made = time.perf_counter() - started
            bodies.close()
    print(json.dumps({
        "planned": planning.planned, "editions": planning.editions, "seconds": seconds,
        "rss_mb": plan_rss, "bodies_mb": (size or 0) / 2**20, "recipes": recipes,
        "recipes_mb": (recipes_size or 0) / 2**20, "made_seconds": made,
        "made_rss_mb": peak_mb(),
    }))  # fmt: skip


def matching() -> dict[str, float]:
    """Time matching the 50,000 lines alone over the day's papers, in this process."""
    from digest.matching import Matcher
    from digest.store.corpus import DayCorpus
    from digest.topics import parse

    papers = {p.id: p for p in harvested(datetime.now(UTC))}
    lines = [line for reader in all_lines() for line in reader]
    started = time.perf_counter()
    parsed = {line: parse(line) for line in set(lines)}
    corpus = DayCorpus(papers)
    matcher = Matcher(corpus)
    hits = [len(matcher.match(parsed[line])) for line in lines]
    seconds = time.perf_counter() - started
    corpus.close()
    return {
        "seconds": seconds,
        "distinct": len(parsed),
        "median_hits": statistics.median(hits),
        "rss_mb": peak_mb(),
    }


def run_child(source: Path, scratch: Path, make: bool = False) -> dict:
    """Plan on a fresh copy of `source`, in a new process; return its JSON."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(scratch), *(["--make"] if make else [])],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the planning child failed:\n{done.stderr}")
    shutil.rmtree(scratch)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.make)
    now = datetime.now(UTC).replace(microsecond=0)
    runs: dict[str, list[dict]] = {"without": [], "with": [], "alone": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in runs:
            build(Path(tmp) / name, now, own=name != "without", alone=name == "alone")
        for number in range(args.repeat):
            for name in runs:
                print(f"run {number + 1}/{args.repeat}: {name} own topics ...", flush=True)
                found = run_child(Path(tmp) / name, Path(tmp) / "run", make=name == "with")
                runs[name].append(found)
    alone = matching()
    med = {name: statistics.median(r["seconds"] for r in found) for name, found in runs.items()}
    print(f"\nplanning {READERS:,} readers, {PAPERS:,} harvested papers today, medians of "
          f"{args.repeat}:")  # fmt: skip
    labels = {
        "without": "without own topics",
        "with": "with own topics",
        "alone": "own, no keyword news",
    }
    for name, found in runs.items():
        last = found[-1]
        print(
            f"  {labels[name]:<20} {med[name]:6.2f} s  {last['planned']:,} messages, "
            f"{last['editions']:,} distinct editions ({last['bodies_mb']:.1f} MB of bodies; "
            f"{last['recipes']:,} personal, planned as {last['recipes_mb']:.1f} MB of orders), "
            f"peak RSS {max(r['rss_mb'] for r in found):.0f} MB"
        )
    made = statistics.median(r["made_seconds"] for r in runs["with"])
    print(
        f"  making the {runs['with'][-1]['recipes']:,} personal digests from their orders, as "
        f"sent: {made:.2f} s ({made / runs['with'][-1]['recipes'] * 1000:.2f} ms each, "
        f"rendering included), peak RSS {max(r['made_rss_mb'] for r in runs['with']):.0f} MB"
    )
    ratio = med["with"] / med["without"]
    print(
        f"  with / without: {ratio:.2f}   target <= 1.5 (issue 18) "
        f"{'ok' if ratio <= 1.5 else 'MISSED'}"
    )
    print(
        f"  matching alone: {READERS * LINES:,} lines ({alone['distinct']:,} distinct) over "
        f"{PAPERS:,} papers in {alone['seconds']:.2f} s, median {alone['median_hits']:g} "
        f"papers a line, peak RSS {alone['rss_mb']:.0f} MB"
    )
    return None


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
