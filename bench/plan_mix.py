"""Planning with mixed schedules (make bench; alone: bench/bench.py --planning-only).

Times a cycle's `plan()` call, as bench.py's digest_child does, for 100,000 subscribers.csv rows
over the same four keyword sets, in two databases that share a history of a week of daily
cycles (8 papers a keyword a day, today's too, as digest_child plans):
  1. the baseline, as today: everyone daily, from subscribers.csv, no `people` rows;
  2. mixed: the same rows, of which about 30 % chose their own topics, 25 % a weekly digest on
     some weekday (a seventh of them due today, with a week's news), 5 % a pause (a fifth of
     them ending today) and 10 % other abstracts than the list's, plus 10,000 confirmed web
     sign-ups with the same mix of schedules. Everything is written through the Store's API
     (save_choices, add_signup and confirm_signup), and each earlier cycle advances people's
     windows as planning would have (Store.advance: mailed, or covered while paused).
Each run plans in its own process (so its peak RSS is its own), on a fresh copy of the database,
baseline and mixed in turn; the figures are medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from peak import peak_mb  # this process's own peak RSS

KEYWORDS = ["Diffusion Model for Recommendation", "Graph Neural Network", "Large Language Model"]
KEYSETS = ["", KEYWORDS[1], f"{KEYWORDS[0]};{KEYWORDS[2]}", f"{KEYWORDS[1]};{KEYWORDS[2]}"]
SECRET = "a bench secret of at least thirty-two bytes"  # digest refuses shorter ones
PAPERS = 8  # a keyword's new papers a day, as digest_child's
RATIO_TARGET, RSS_TARGET = 1.2, 150.0


@dataclasses.dataclass
class Options:
    """How much to measure (bench.py's --planning-* options)."""

    subscribers: int = 100_000
    web: int = 10_000
    repeat: int = 3
    cycles: int = 7  # earlier daily cycles: a weekly reader due today last got mail 7 ago
    own_topics: float = 0.30
    weekly: float = 0.25
    paused: float = 0.05
    abstracts: float = 0.10
    seed: int = 12


# --- the data ----------------------------------------------------------------------------------


def papers_of(day: int, now: datetime) -> dict[str, list]:
    """Return each keyword's papers of a cycle `day` days before now (0: today's, the same
    papers digest_child plans)."""
    from digest.models import Paper

    abstract = (
        "We propose a method that improves the state of the art on several benchmarks "
        "while using fewer parameters and less training data than previous work. "
    ) * 8
    moment = now - timedelta(days=day)
    return {
        keyword.casefold(): [
            Paper(
                id=f"2611.{k}{i:04d}" if day == 0 else f"2610.{day:02d}{k}{i:02d}",
                version=1,
                title=f"{keyword}: study number {i}" + (f" of day -{day}" if day else ""),
                authors=("Ada Lovelace", "Alan Turing", "Grace Hopper"),
                abstract=abstract.strip(),
                comment="12 pages, 4 figures",
                published=moment - timedelta(hours=i + 1),
                updated=moment - timedelta(hours=i + 1),
                primary_category="cs.IR",
                categories=("cs.IR", "cs.LG"),
            )
            for i in range(PAPERS)
        ]
        for k, keyword in enumerate(KEYWORDS)
    }


def settings_text() -> str:
    """Return the settings of digest_child's cycle (no mail is sent), in UTC."""
    keywords = "".join(f'[[keywords]]\nname = "{k}"\n' for k in KEYWORDS)
    return (
        '[digest]\nbase_url = "https://papers.example.org"\ntimezone = "UTC"\n'
        f"{keywords}"
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\nsender = "Papers <papers@example.org>"\n'
        "connections = 8\ntimeout = 30\n"
    )


@dataclasses.dataclass
class Chooser:
    """A person with a `people` row: what the earlier cycles and today do with them."""

    key: str
    weekday: int | None  # weekly on this day
    paused_until: date | None

    def decision(self, day: date) -> str:
        """Return 'covered' (paused), 'waits' (not their weekday) or 'mailed' on a day."""
        if self.paused_until is not None and day < self.paused_until:
            return "covered"
        if self.weekday is not None and day.weekday() != self.weekday:
            return "waits"
        return "mailed"


def draw_choices(rng: random.Random, options: Options, today: date) -> dict[str, object]:
    """Draw one person's schedule, pause and abstracts (each independently)."""
    choices: dict[str, object] = {}
    if rng.random() < options.weekly:
        choices.update(frequency="weekly", weekday=rng.randrange(7))
    if rng.random() < options.paused:
        ends = 0 if rng.random() < 0.2 else rng.randint(1, 30)
        choices["paused_until"] = today + timedelta(days=ends)
    if rng.random() < options.abstracts:
        choices["abstracts"] = rng.choice(["full", "none"])  # the list's is "snippet"
    return choices


def build(folder: Path, options: Options, now: datetime, mixed: bool) -> dict[str, object]:
    """Write settings, subscribers.csv and a database with a week's history (and, mixed, the
    people's choices and web sign-ups); return what today's plan should find."""
    from digest.addresses import address_key
    from digest.config import Keyword
    from digest.store import Store

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.toml").write_text(settings_text())
    (folder / "now.txt").write_text(now.isoformat())
    with open(folder / "subscribers.csv", "w") as csv:
        csv.write("email,name,keywords\n")
        for i in range(options.subscribers):
            csv.write(f"user{i:06d}@example.org,User {i},{KEYSETS[i % len(KEYSETS)]}\n")
    rng = random.Random(options.seed)
    today = now.date()
    keys = [k.casefold() for k in KEYWORDS]
    choosers: list[Chooser] = []
    mix: Counter = Counter()
    start = now - timedelta(days=options.cycles + 1)  # choices made before the week's cycles
    with Store(folder / "digest.db") as store:
        store.secret(SECRET)
        if mixed:
            with store.transaction():  # one transaction: each call's own becomes a savepoint
                for i in range(options.subscribers):
                    choices = draw_choices(rng, options, today)
                    if rng.random() < options.own_topics:
                        choices["topics"] = rng.sample(keys, rng.randint(1, len(keys)))
                    if not choices:
                        continue
                    email = f"user{i:06d}@example.org"
                    store.save_choices(email, f"User {i}", "csv", choices, start)
                    choosers.append(_chooser(address_key(email), choices))
                    mix.update(f"csv {name}" for name in choices if name != "weekday")
                for i in range(options.web):
                    email, name = f"web{i:05d}@example.org", f"Web reader {i}"
                    topics = rng.sample(keys, rng.randint(1, len(keys)))
                    store.add_signup(f"bench-nonce-{i}", email, name, topics, start)
                    store.confirm_signup(f"bench-nonce-{i}", start + timedelta(minutes=i % 600))
                    choices = draw_choices(rng, options, today)
                    if choices:  # a web sign-up's choices keep their topics
                        store.save_choices(email, name, "web", {**choices, "topics": topics}, start)
                    choosers.append(_chooser(address_key(email), choices))
                    mix.update(f"web {name}" for name in choices if name != "weekday")
        queries = {k.casefold(): Keyword(k).search_query() for k in KEYWORDS}
        for day in range(options.cycles, 0, -1):
            moment = now - timedelta(days=day)
            cycle_id = store.begin_cycle(moment)
            found = papers_of(day, now)
            store.record_papers(p for papers in found.values() for p in papers)
            decided: dict[str, list[str]] = {"covered": [], "mailed": [], "waits": []}
            for chooser in choosers:
                decided[chooser.decision(moment.date())].append(chooser.key)
            with store.transaction():  # as plan() records a cycle
                for key, papers in found.items():
                    news = [p.id for p in papers]
                    store.record_keyword(key, papers, cycle_id, moment, queries[key], news)
                store.advance(cycle_id, moment.date(), decided["covered"], decided["mailed"])
                store.mark_planned(cycle_id, moment)
            store.finish_cycle(cycle_id, "ok", {}, moment)
    today_decisions = Counter(c.decision(today) for c in choosers)
    resumed = sum(c.paused_until == today for c in choosers)
    plain = options.subscribers - sum(1 for c in choosers if c.key.startswith("user"))
    return {
        "people": len(choosers),
        "mix": dict(mix),
        "expected": plain + today_decisions["mailed"],  # every topic set has news today
        "weekly_due": sum(c.weekday == today.weekday() for c in choosers),
        "waits": today_decisions["waits"],
        "covered": today_decisions["covered"],
        "resumed": resumed,
    }


def _chooser(key: str, choices: dict[str, object]) -> Chooser:
    paused = choices.get("paused_until")
    weekday = choices.get("weekday") if choices.get("frequency") == "weekly" else None
    return Chooser(
        key,
        weekday if isinstance(weekday, int) else None,
        paused if isinstance(paused, date) else None,
    )


# --- one run, in its own process -----------------------------------------------------------------


def child(folder: Path, profile: Path | None = None, memory: int = 0) -> None:
    """Plan today's cycle in `folder` (as digest_child does) and print JSON.

    `profile`: write cProfile's stats of the plan() call there; `memory`: print the
    tracemalloc peak and the top allocation sites (this many) instead of timing cleanly.
    """
    from digest.config import load_settings
    from digest.fetch import Fetched, FetchWindow
    from digest.models import KeywordResult
    from digest.planning import plan
    from digest.store import Store

    settings = load_settings(folder / "settings.toml", env={"DIGEST_SECRET": SECRET})
    now = datetime.fromisoformat((folder / "now.txt").read_text())
    fetched = [KeywordResult(k.name) for k in settings.keywords]
    extra: dict[str, object] = {}
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        cycle_id = store.begin_cycle(now)
        window = FetchWindow(now - timedelta(days=3))
        found = {k: Fetched(window, p) for k, p in papers_of(0, now).items()}
        if memory:
            import tracemalloc

            tracemalloc.start(1)  # by line: deeper stacks take minutes
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        planning = plan(settings, store, found, fetched, cycle_id, now, secret)
        planned = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        if memory:
            snapshot = tracemalloc.take_snapshot()
            extra["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            extra["top"] = [str(s) for s in snapshot.statistics("lineno")[:memory]]
    print(
        json.dumps(
            {
                "planned": planning.planned,
                "editions": planning.editions,
                "plan_seconds": planned,
                "peak_rss_mb": peak_mb(),
                **extra,
            }
        )
    )


def run_child(source: Path, scratch: Path) -> dict:
    """Plan on a fresh copy of the folder `source`, in a new process; return its JSON."""
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(source, scratch)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(scratch)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"the planning child failed:\n{done.stderr}")
    shutil.rmtree(scratch)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the measure -------------------------------------------------------------------------------


def run(folder: Path, options: Options, say: Callable[[str], None]) -> dict:
    """Build both databases, then plan on each `repeat` times, in turn; return the figures."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    built: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for name in ("baseline", "mixed"):
        say(
            f"planning: writing the {name} database ({options.subscribers:,} subscribers"
            + (f", {options.web:,} web sign-ups" if name == "mixed" else "")
            + f", {options.cycles} earlier cycles) ..."
        )
        began = time.perf_counter()
        built[name] = build(folder / name, options, now, mixed=name == "mixed")
        seconds[name] = time.perf_counter() - began
    runs: dict[str, list[dict]] = {"baseline": [], "mixed": []}
    for number in range(1, options.repeat + 1):
        for name in ("baseline", "mixed"):
            say(f"planning run {number}/{options.repeat}: {name} ...")
            runs[name].append(run_child(folder / name, folder / "run"))
    return {
        "built": built,
        "build_seconds": seconds,
        "runs": runs,
        "now": now.isoformat(),
        "seconds": time.perf_counter() - started,
    }


def report(found: dict, options: Options) -> None:
    """Print both planning times, their ratio, the mixed run's peak RSS and the counts."""
    runs, mixed = found["runs"], found["built"]["mixed"]
    med = {n: statistics.median(r["plan_seconds"] for r in rs) for n, rs in runs.items()}
    rss = {n: [r["peak_rss_mb"] for r in rs] for n, rs in runs.items()}
    ratio = med["mixed"] / med["baseline"]
    today = datetime.fromisoformat(found["now"]).strftime("%A")
    print()
    print(
        f"planning {options.subscribers:,} subscribers, medians of {options.repeat} run(s), "
        f"each in its own process (today is a {today}; the measure took "
        f"{found['seconds']:.0f} s, {sum(found['build_seconds'].values()):.0f} s of it writing "
        "the databases)"
    )
    mix = mixed["mix"]
    print(
        f"  mixed: {mixed['people']:,} people rows: of the CSV rows {mix.get('csv topics', 0):,} "
        f"own topics, {mix.get('csv frequency', 0):,} weekly, {mix.get('csv paused_until', 0):,} "
        f"paused, {mix.get('csv abstracts', 0):,} other abstracts; {options.web:,} web sign-ups "
        f"({mix.get('web frequency', 0):,} weekly, {mix.get('web paused_until', 0):,} paused, "
        f"{mix.get('web abstracts', 0):,} other abstracts)"
    )
    print(
        f"  today: {mixed['weekly_due']:,} weekly readers due (a week's news), "
        f"{mixed['waits']:,} wait for their day, {mixed['covered']:,} paused, "
        f"{mixed['resumed']:,} resume; {mixed['expected']:,} messages expected"
    )
    for name in ("baseline", "mixed"):
        times = [r["plan_seconds"] for r in runs[name]]
        last = runs[name][-1]
        print(
            f"  {name:<9} {med[name]:6.2f} s  [{min(times):.2f}-{max(times):.2f}]  "
            f"{last['planned']:,} messages, {last['editions']} distinct editions, "
            f"{statistics.median(last['planned'] / t for t in times):,.0f} msg/s, "
            f"peak RSS {statistics.median(rss[name]):.0f} MB [{min(rss[name]):.0f}-"
            f"{max(rss[name]):.0f}]"
        )
    pair = runs["baseline"], runs["mixed"]
    paired = [m["plan_seconds"] / b["plan_seconds"] for b, m in zip(*pair, strict=True)]
    print(
        f"  mixed / baseline of each round (run one after the other): "
        f"{', '.join(f'{r:.2f}' for r in paired)}; median {statistics.median(paired):.2f}"
    )
    if any(r["planned"] != mixed["expected"] for r in runs["mixed"]):
        print(f"  mixed planned other than the {mixed['expected']:,} messages expected")
    checks = [
        ("mixed / baseline time", ratio, RATIO_TARGET),
        ("peak RSS of mixed, MB", max(rss["mixed"]), RSS_TARGET),
    ]
    for name, value, target in checks:
        verdict = "ok" if value <= target else "MISSED"
        print(f"  {name:<24}{value:8.2f}   target <= {target:<19g} {verdict}")


def main(argv: list[str] | None = None) -> None:
    """The planning child (--child FOLDER), or the measure alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help="plan in this folder and print JSON")
    parser.add_argument("--profile", type=Path, help="with --child: cProfile stats to this file")
    parser.add_argument("--memory", type=int, default=0, help="with --child: tracemalloc top N")
    parser.add_argument("--build", type=Path, help="write the mixed folder here and stop")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.profile, args.memory)
    if args.build:
        now = datetime.now(UTC).replace(microsecond=0)
        print(json.dumps(build(args.build, Options(), now, mixed=True)))
        return None
    with tempfile.TemporaryDirectory() as tmp:
        options = Options()
        report(run(Path(tmp), options, print), options)
    return None


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
