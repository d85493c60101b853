"""The public site under abuse (make bench; alone: bench/bench.py --abuse-only).

Writes (or reuses) the history of 100,000 papers of bench/history.py, runs `digest serve` on a
copy in its own process, and has 16 clients search without let-up: uncached worst-case searches
(half of them the review's 50 words with repeats, drawn from the 3 most common words so that
every paper matches; half 25 two-word "phrases" of common words), each a text not asked before
and with a fresh `&n=<random>`. Meanwhile one more client times `POST /unsubscribe` (a real
signed link), `GET /healthz` and the cached front page, one after the other. It prints their
p50 and p99 against the targets (unsubscribe p99 < 500 ms, healthz p99 < 200 ms) and the
searches answered per second, by status: 200 (results), 422 (stopped at the deadline: "too
broad"), 503 (the room was full).
The rate per client network is off ([web] room_rate = 0): all 16 clients come from 127.0.0.1,
one /24, and would mostly be answered 429 at once; so this measures the harder case, a flood
from many networks, held only by room_concurrency, room_queue and the deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

from reading_room import (
    SECRET,
    Options,
    cpu_seconds,
    databases,
    settings_text,
    start_server,
    stop_server,
)

TARGETS = {"unsubscribe": 0.5, "healthz": 0.2, "front page": None}  # seconds, p99
ALAN = "alan@example.org"


@dataclasses.dataclass
class Abuse:
    """How hard to push (bench.py's --abuse-* options)."""

    papers: int = 100_000
    clients: int = 16
    seconds: float = 30.0
    keep: Path | None = None  # the histories' folder, shared with the reading room's section


def common_words(count: int = 40) -> list[str]:
    """Return the history's most common words (its Zipf ranks), the costliest to search."""
    from history import Writer

    return Writer().words[:count]


def worst_search(rng: random.Random, words: list[str], phrases: bool) -> str:
    """Return an uncached worst-case search URL: the review's 50 words drawn from the 3 most
    common (`the and the of …`: every paper matches), or 25 two-word "phrases" of common words
    (position lists to compare); a text not asked before, and a fresh &n= each time."""
    if phrases:
        text = " ".join(f'"{rng.choice(words)} {rng.choice(words)}"' for _ in range(25))
    else:
        text = " ".join(rng.choice(words[:3]) for _ in range(50))
    return f"/search?q={quote_plus(text)}&n={rng.random()}"


def percentile(values: list[float], share: float) -> float:
    """Return the value under which `share` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def measure(base: str, token: str, options: Abuse, pid: int, say) -> dict:
    """Hammer the search from `clients` connections while timing unsubscribes and /healthz."""
    import aiohttp

    words = common_words()
    stop = asyncio.Event()
    answered: Counter[int] = Counter()
    failed: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=120)

    async def searcher(number: int) -> None:
        rng = random.Random(number)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                url = base + worst_search(rng, words, phrases=number % 2 == 1)
                try:
                    async with session.get(url) as response:
                        await response.read()
                        answered[response.status] += 1
                except aiohttp.ClientError as exc:
                    failed[type(exc).__name__] += 1

    times: dict[str, list[float]] = {"unsubscribe": [], "healthz": [], "front page": []}
    errors: Counter[str] = Counter()
    async with aiohttp.ClientSession(timeout=timeout) as personal:

        async def timed(name: str, method: str, path: str) -> None:
            started = time.perf_counter()
            try:
                async with personal.request(method, base + path, data={}) as response:
                    await response.read()
                    if response.status != 200:
                        errors[f"{name} {response.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[f"{name} {type(exc).__name__}"] += 1
            times[name].append(time.perf_counter() - started)

        say(
            f"abuse: {options.clients} clients searching without let-up for "
            f"{options.seconds:g} s, unsubscribe and /healthz timed meanwhile ..."
        )
        tasks = [asyncio.create_task(searcher(n)) for n in range(options.clients)]
        await timed("front page", "GET", "/")  # now in the cache
        while answered.total() < options.clients:  # every client's first search is answered
            await timed("healthz", "GET", "/healthz")  # (this warms the connection, untimed)
        times["healthz"].clear()
        times["front page"].clear()
        server, started = cpu_seconds(pid), time.perf_counter()
        before = answered.copy()
        while time.perf_counter() - started < options.seconds:
            await timed("unsubscribe", "POST", f"/unsubscribe?token={token}")
            await timed("healthz", "GET", "/healthz")
            await timed("front page", "GET", "/")
        elapsed = time.perf_counter() - started
        during = answered - before
        cpu = (cpu_seconds(pid) - server) / elapsed
        stop.set()
        await asyncio.gather(*tasks)
    return {
        "times": times,
        "errors": errors,
        "answered": during,
        "failed": failed,
        "elapsed": elapsed,
        "server_cpu": cpu,
    }


def run(folder: Path, options: Abuse, port: int, say=print) -> dict:
    """Run the abuse section; return its figures."""
    from digest.store import Store
    from digest.tokens import make_token, token_id

    started = time.perf_counter()
    keep = options.keep or folder
    keep.mkdir(parents=True, exist_ok=True)
    paths, _ = databases(keep, Options(papers=options.papers), say)
    database = folder / "abuse.db"
    shutil.copyfile(paths["large"], database)  # the unsubscribes write: keep the history as is
    secret = SECRET.encode()
    with Store(database) as store:
        store.remember_recipients([(token_id(secret, ALAN), ALAN, "Alan", ["x"], "csv")])
    settings = folder / "abuse.toml"
    settings.write_text(settings_text(database, folder / "archive.md", port) + "room_rate = 0\n")
    say(f"abuse: digest serve on 127.0.0.1:{port} ({options.papers:,} papers) ...")
    server = start_server(folder, settings, port)
    try:
        base = f"http://127.0.0.1:{port}"
        found = asyncio.run(measure(base, make_token(secret, ALAN), options, server.pid, say))
    finally:
        stop_server(server)
    found["seconds"] = time.perf_counter() - started
    return found


def report(found: dict, options: Abuse) -> None:
    """Print the latencies against their targets, and the search throughput achieved."""
    answered, elapsed = found["answered"], found["elapsed"]
    print()
    print(
        f"abuse: {options.clients} clients searching without let-up (uncached worst-case "
        f"searches, [web] room_rate off) on {options.papers:,} papers for {elapsed:.0f} s; "
        f"`digest serve` used {found['server_cpu']:.0%} of one core"
    )
    total = answered.total()
    parts = ", ".join(f"{answered[s]} x {s}" for s in sorted(answered))
    print(f"  searches answered     {total / elapsed:8.1f} /s  ({parts})")
    print(
        f"  with results (200)    {answered[200] / elapsed:8.1f} /s; too broad (422) "
        f"{answered[422] / elapsed:.1f} /s; room full (503) {answered[503] / elapsed:.1f} /s"
    )
    if found["failed"]:
        print(f"  search client errors: {dict(found['failed'])}")
    for name, target in TARGETS.items():
        ms = [1000 * s for s in found["times"][name]]
        p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
        if target is None:
            goal = "(cached: for the record)"
        else:
            goal = f"target p99 < {1000 * target:.0f} ms  " + (
                "ok" if p99 < 1000 * target else "MISSED"
            )
        print(
            f"  {name:<14} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {max(ms):7.1f} ms "
            f"over {len(ms)}   {goal}"
        )
    if found["errors"]:
        print(f"  ERRORS: {dict(found['errors'])}")
    print(f"  (the section took {found['seconds']:.0f} s)")
