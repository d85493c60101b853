"""Planning with ranking (alone: python bench/plan_rank.py; make bench runs it too).

10,000 subscribers.csv rows over bench/plan_mix.py's keyword sets and its week of history; today
each keyword has a third of a 2,000-paper day (bench/plan_own.py's made-up papers), and a third
of the readers have voted (10 votes each, 7 likes and 3 dislikes, on papers of the history).
Planned in a fresh process on a fresh copy each time, in turns:
  1. without ranking (sections as found, newest first; no reader's body of their own);
  2. with ranking (every section ordered by its words and, for voters, their votes).
Prints the medians, their ratio and the peak RSS of each (issue 19: ranking adds at most 25 %
to planning and 50 MB).
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
import plan_own  # the day's made-up papers
from peak import peak_mb  # this process's own peak RSS

READERS, VOTERS, VOTES = 10_000, 3_333, 10
RATIO_TARGET, RSS_TARGET = 1.25, 50.0


def build(folder: Path, now: datetime) -> None:
    """Write plan_mix's baseline folder and a third of the readers' votes."""
    from digest.store import Store

    plan_mix.build(folder, plan_mix.Options(subscribers=READERS, web=0), now, mixed=False)
    rng = random.Random(3)
    with Store(folder / "digest.db") as store:
        history = [row[0] for row in store.db.execute("SELECT id FROM papers")]
        with store.transaction():
            for i in range(VOTERS):
                email = f"user{i * 3:06d}@example.org"
                for n, paper in enumerate(rng.sample(history, min(VOTES, len(history)))):
                    store.record_vote(email, paper, 1 if n < 7 else -1, now - timedelta(days=n))


def child(folder: Path, ranked: bool) -> None:
    """Plan today's cycle in `folder` (with or without ranking) and print JSON."""
    from digest import ranker
    from digest.config import load_settings
    from digest.fetch import Fetched, FetchWindow
    from digest.models import KeywordResult
    from digest.planning import plan
    from digest.store import Store

    if not ranked:  # as before ranking: sections as found (newest first), bodies shared
        ranker.Ranker.plain = (  # type: ignore[method-assign]
            lambda self, sections, *rest: ranker.Plain(sections, {}, {}, {}, None)
        )
        ranker.Ranker.arrange = (  # type: ignore[method-assign]
            lambda self, plain, reader=None: ranker.Arranged(plain.sections, {}, {}, 0, {})
        )
        ranker.Ranker.personal = lambda self, key: False  # type: ignore[method-assign]
    settings = load_settings(folder / "settings.toml", env={"DIGEST_SECRET": plan_mix.SECRET})
    now = datetime.fromisoformat((folder / "now.txt").read_text())
    day = plan_own.harvested(now)
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        cycle_id = store.begin_cycle(now)
        window = FetchWindow(now - timedelta(days=3))
        keys = [k.key for k in settings.fetched_keywords]
        found = {k: Fetched(window, day[n :: len(keys)]) for n, k in enumerate(keys)}
        results = [KeywordResult(k.name) for k in settings.fetched_keywords]
        started = time.perf_counter()
        planning = plan(settings, store, found, results, cycle_id, now, secret)
        seconds = time.perf_counter() - started
    print(json.dumps({
        "planned": planning.planned, "editions": planning.editions, "seconds": seconds,
        "rss_mb": peak_mb(),
    }))  # fmt: skip


def run_child(source: Path, scratch: Path, ranked: bool) -> dict:
    """Plan on a fresh copy of `source`, in a new process; return its JSON."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    args = [sys.executable, __file__, "--child", str(scratch)] + ([] if ranked else ["--plain"])
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the planning child failed:\n{done.stderr}")
    shutil.rmtree(scratch)
    return json.loads(done.stdout.strip().splitlines()[-1])


def section(repeat: int = 3) -> dict[str, float]:
    """Measure and print; return the ratio and the extra RSS."""
    now = datetime.now(UTC).replace(microsecond=0)
    runs: dict[str, list[dict]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp) / "source", now)
        for number in range(repeat):
            for name in runs:
                print(f"run {number + 1}/{repeat}: planning {name} ranking ...", flush=True)
                runs[name].append(
                    run_child(Path(tmp) / "source", Path(tmp) / "run", name == "with")
                )
    med = {name: statistics.median(r["seconds"] for r in found) for name, found in runs.items()}
    rss = {name: statistics.median(r["rss_mb"] for r in found) for name, found in runs.items()}
    print(
        f"\nranking: {READERS:,} readers ({VOTERS:,} with {VOTES} votes), a "
        f"{len(plan_own.harvested(now)):,}-paper day, medians of {repeat}:"
    )
    for name, found in runs.items():
        last = found[-1]
        print(
            f"  {name:<8} ranking {med[name]:6.2f} s  {last['planned']:,} messages, "
            f"{last['editions']:,} distinct editions, peak RSS {rss[name]:.0f} MB"
        )
    ratio, extra = med["with"] / med["without"], rss["with"] - rss["without"]
    print(
        f"  with / without: {ratio:.2f} (target <= {RATIO_TARGET}) "
        f"{'OK' if ratio <= RATIO_TARGET else 'MISSED'}; RSS {extra:+.0f} MB (target <= "
        f"{RSS_TARGET:g}) {'OK' if extra <= RSS_TARGET else 'MISSED'}"
    )
    return {"ratio": ratio, "extra_mb": extra}


def main(argv: list[str] | None = None) -> None:
    """Run the section alone (or be its child process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, not args.plain)
    section(args.repeat)
    return None


if __name__ == "__main__":
    main()
