"""Own topics (make bench; alone: bench/bench.py --topics-only).

Matching: 10,000 readers with 5 own topics each (50,000 lines; 30 % of them identical across
readers, drawn from a shared pool of popular topics, the rest each reader's own) against a
2,000-paper day, as planning does it: every distinct line parsed once, the day indexed once
(DayCorpus), every distinct query matched once (Matcher). The papers' words follow Zipf's law
over a 20,000-word vocabulary, authors carry accents, categories span five archives; the topics
mix words, phrases, exclusions, au:, cat: and OR. Each run is a child process, so its peak RSS
is its own; the figures are medians. Targets (issue 18): ≤ 10 s and ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peak import peak_mb  # this process's own peak RSS

ROOT = Path(__file__).resolve().parent.parent
FAMILY: list[str] = []  # surnames, accented ones among them (set in child())
SECONDS_TARGET, RSS_TARGET = 10.0, 150.0
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ra",
    "su",
    "ti",
    "ve",
    "zo",
    "pa",
    "qu",
    "de",
    "fi",
    "gu",
    "ho",
    "ja",
    "ly",
    "mo",
    "nu",
    "or",
]
ARCHIVES = ["cs", "math", "stat", "physics", "q-bio"]
SUBJECTS = ["AI", "IR", "LG", "CL", "CV", "DS", "ST", "ML", "AP", "NC"]
GIVEN = ["Anna", "José", "Zoë", "Jürgen", "Li", "Amélie", "Søren", "Ngozi", "Tomás", "Ana"]
ACCENTED = ["Müller", "García", "Nguyễn", "Østergaard", "Smith", "Kowalski", "Öztürk", "Dubois"]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    """Return distinct made-up words, most frequent first."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def day_papers(rng: random.Random, words: list[str], n: int) -> dict:
    """Return a day of papers with Zipf-distributed words."""
    from digest.models import Paper

    weights = [1 / (rank + 1) for rank in range(len(words))]
    now = datetime(2026, 11, 30, tzinfo=UTC)
    papers = {}
    for i in range(n):
        title = " ".join(rng.choices(words, weights, k=rng.randint(6, 14)))
        abstract = " ".join(rng.choices(words, weights, k=rng.randint(120, 220)))
        primary = f"{rng.choice(ARCHIVES)}.{rng.choice(SUBJECTS)}"
        cats = (primary, *{f"{rng.choice(ARCHIVES)}.{rng.choice(SUBJECTS)}" for _ in range(2)})
        authors = tuple(
            f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}" for _ in range(rng.randint(1, 8))
        )
        pid = f"2611.{i:05d}"
        papers[pid] = Paper(
            pid, 1, title, authors, abstract, None, now - timedelta(hours=i % 24), now,
            primary, cats,
        )  # fmt: skip
    return papers


def topic_line(rng: random.Random, words: list[str]) -> str:
    """Return one own topic in the syntax's usual shapes."""
    # Log-uniform over ranks 30 to 20,000: a topic's words are rarer than the commonest.
    pick = lambda: words[int(math.exp(rng.uniform(math.log(30), math.log(len(words) - 1))))]  # noqa: E731
    shape = rng.random()
    if shape < 0.35:
        return " ".join(pick() for _ in range(rng.randint(1, 3)))
    if shape < 0.55:
        return f'"{pick()} {pick()}"' + (f" -{pick()}" if rng.random() < 0.5 else "")
    if shape < 0.70:
        return f"au:{rng.choice(FAMILY)}" if rng.random() < 0.5 else (
            f'au:"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"'
        )  # fmt: skip
    if shape < 0.85:
        return f"cat:{rng.choice(ARCHIVES)}.{rng.choice(SUBJECTS)} {pick()}"
    return f"{pick()} {pick()} OR {pick()} -{pick()}"


def readers_topics(rng: random.Random, words: list[str], readers: int, per: int, shared: float):
    """Return each reader's lines: `shared` of all lines drawn from a pool of popular topics."""
    pool = [topic_line(rng, words) for _ in range(max(readers // 20, 1))]
    return [
        [rng.choice(pool) if rng.random() < shared else topic_line(rng, words) for _ in range(per)]
        for _ in range(readers)
    ]


def child(options: dict) -> None:
    """Generate the data, then time parsing, indexing and matching; print JSON."""
    sys.path.insert(0, str(ROOT))
    from digest.matching import Matcher
    from digest.store.corpus import DayCorpus
    from digest.topics import TopicError, parse

    rng = random.Random(options["seed"])
    words = vocabulary(rng)
    FAMILY[:] = ACCENTED + [
        w.capitalize() + rng.choice(["é", "ø", "ü", "", ""]) for w in words[:3000]
    ]
    papers = day_papers(rng, words, options["papers"])
    lines = readers_topics(rng, words, options["readers"], options["per"], options["shared"])
    rss_before = peak_mb()
    start = time.perf_counter()
    parsed: dict[str, object] = {}
    for reader in lines:
        for line in reader:
            if line not in parsed:
                try:
                    parsed[line] = parse(line)
                except TopicError:
                    parsed[line] = None
    parse_s = time.perf_counter() - start
    corpus = DayCorpus(papers)
    index_s = time.perf_counter() - start - parse_s
    matcher = Matcher(corpus)
    matched = 0
    for reader in lines:
        for line in reader:
            if (topic := parsed[line]) is not None:
                matched += len(matcher.match(topic))
    total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": total,
                "parse": parse_s,
                "index": index_s,
                "lines": sum(map(len, lines)),
                "distinct_lines": len(parsed),
                "distinct_queries": len({t.key for t in parsed.values() if t is not None}),
                "distinct_terms": len(matcher.terms),
                "matches": matched,
                "rss_mb": peak_mb(),
                "rss_data_mb": rss_before,
            }
        )
    )


def matching_section(readers: int, per: int, papers: int, shared: float, repeat: int) -> dict:
    """Run the matching measure `repeat` times in child processes; print and return medians."""
    print(
        f"own topics: {readers:,} readers x {per} topics ({shared:.0%} shared) against a "
        f"{papers:,}-paper day ...",
        flush=True,
    )
    options = {"readers": readers, "per": per, "papers": papers, "shared": shared}
    runs = []
    for run in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(options | {"seed": run + 1})],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        runs.append(json.loads(out.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    rss = statistics.median(r["rss_mb"] for r in runs)
    last = runs[-1]
    print(
        f"  {last['lines']:,} lines, {last['distinct_lines']:,} distinct, "
        f"{last['distinct_queries']:,} distinct queries, {last['distinct_terms']:,} distinct "
        f"terms, {last['matches']:,} reader-paper matches"
    )
    print(
        f"  match time median {seconds:.2f} s (parse {last['parse']:.2f} s, index "
        f"{last['index']:.2f} s) over {repeat} runs: target <= {SECONDS_TARGET:g} s "
        f"{'OK' if seconds <= SECONDS_TARGET else 'MISSED'}"
    )
    print(
        f"  peak RSS median {rss:.0f} MB (the data alone {last['rss_data_mb']:.0f} MB): "
        f"target <= {RSS_TARGET:g} MB {'OK' if rss <= RSS_TARGET else 'MISSED'}"
    )
    return {"seconds": seconds, "rss_mb": rss}


def main(argv: list[str] | None = None) -> None:
    """Run the own-topics section alone (bench.py --topics-only calls matching_section)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--per", type=int, default=5)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--shared", type=float, default=0.30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    matching_section(args.readers, args.per, args.papers, args.shared, args.repeat)


if __name__ == "__main__":
    main()
